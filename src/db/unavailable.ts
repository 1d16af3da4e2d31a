import type pg from 'pg';
import { DomainError } from '../lib/errors.js';

/**
 * SQLSTATE classes and codes that mean the server is not there right now, not that the statement is wrong:
 * class 08 (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now
 * (starting up or in recovery), 53300 too_many_connections, 57014 query_canceled (statement_timeout).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);

/** Socket-level failures reaching or talking to the server. */
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Messages node-postgres and pg-pool raise without a code: a connection that ended, a pool that could not
 * hand out a client in time, a client-side query timeout. Matched here, and only here, because the
 * driver gives them no code.
 */
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Query read timeout/,
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
];

/** Whether `err` says the database is unreachable or going away (retry later), rather than a bad statement. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DomainError) return err.code === 'unavailable';
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08') || UNAVAILABLE_ERRNOS.has(code)) return true;
  }
  if (UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(err.message))) return true;
  // An AggregateError (several addresses refused) is unavailable when every part is.
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.every(isDatabaseUnavailable);
  return false;
}

/** `err` as DomainError('unavailable') when it means the database is unreachable; anything else as it is. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof DomainError || !isDatabaseUnavailable(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new DomainError('unavailable', 'the database is unavailable, try again shortly', {
    detail: `database unavailable: ${reason}`,
    cause: err,
  });
}

type QueryFn = (...args: unknown[]) => unknown;
type ConnectFn = (...args: unknown[]) => unknown;

/**
 * Makes a pg pool survive its server going away and report it as DomainError('unavailable').
 * node-postgres emits 'error' on a client whose connection drops; the pool listens only while a client is
 * idle, so a client checked out (between the statements of a transaction) would raise an uncaught error
 * and close the process. Every client gets its own listener when it connects; the query in flight still
 * rejects, and pg-pool drops a client that is no longer queryable when it is released. Call after
 * `preparingPool`, so that its stale-statement retry still sees the driver's own error codes.
 */
export function resilientPool(pool: pg.Pool, onError: (err: Error) => void = () => {}): pg.Pool {
  pool.on('error', onError);
  pool.on('connect', (client) => {
    client.on('error', onError);
    const query = client.query.bind(client) as QueryFn;
    (client as unknown as { query: QueryFn }).query = (...args: unknown[]) => {
      const result = query(...args);
      // Callback and submittable forms are left alone; Kysely uses the promise form.
      if (typeof args[args.length - 1] === 'function' || !(result instanceof Promise)) return result;
      return result.catch((err: unknown) => {
        throw asUnavailable(err);
      });
    };
  });
  const connect = pool.connect.bind(pool) as ConnectFn;
  (pool as unknown as { connect: ConnectFn }).connect = (...args: unknown[]) => {
    if (args.length > 0) return connect(...args);
    return (connect() as Promise<unknown>).catch((err: unknown) => {
      throw asUnavailable(err);
    });
  };
  return pool;
}
