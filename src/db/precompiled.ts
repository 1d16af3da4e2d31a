import { createHash } from 'node:crypto';
import type { Compilable, CompiledQuery } from 'kysely';
import type { SchemalessDb } from './database.js';
import type pg from 'pg';

/**
 * Hot statements, compiled once and prepared by Postgres once per connection (the product design:
 * "hot queries are prepared"). Building and compiling a Kysely query (with the schema prefix) costs more CPU than
 * Postgres takes to run these statements, and an unnamed statement is parsed and planned again every
 * time. A precompiled query is built once per database handle with a marker in place of each parameter;
 * each call then only fills in the parameter list. On Postgres its SQL text is sent as a named prepared
 * statement (see `preparingPool`); PGlite simply runs it.
 *
 * Parameters must all come from the `params` object (a constant would be baked into the first call) and
 * every parameter must be a value: the markers are strings, so a builder must not inspect or spread them.
 * Statements name their result columns instead of `returning *`, so a migration that adds a column does
 * not invalidate the prepared plans of replicas still running; one that changes a returned column's type
 * does, and `preparingPool` recovers from that. The cache is per handle: inside a transaction (a new
 * handle each time) a query is compiled again, so keep precompiled queries on the pool's handle.
 * Behind a transaction-pooling pgbouncer older than 1.21 (or with max_prepared_statements = 0), set
 * DATABASE_PREPARED_STATEMENTS=false.
 */

const MARKER = '\u0000gatehouse-param:';

/** SQL text of each prepared statement to its statement name. */
const statementNames = new Map<string, string>();

/** The statement name for a precompiled SQL text, if it is one. */
export function preparedName(sqlText: string): string | undefined {
  return statementNames.get(sqlText);
}

export type PrecompiledQuery<P, R> = (db: SchemalessDb, params: P) => Promise<R[]>;

/** Compiles `build` once per database handle; each call runs it with these parameter values. */
export function precompiled<P extends Record<string, unknown>, R>(
  build: (db: SchemalessDb, params: P) => Compilable<R>,
): PrecompiledQuery<P, R> {
  const cache = new WeakMap<object, { compiled: CompiledQuery<R>; slots: Array<keyof P & string> }>();
  return async (db, values) => {
    let entry = cache.get(db);
    if (!entry) {
      const markers = new Proxy({} as P, { get: (_target, name) => `${MARKER}${String(name)}` });
      const compiled = build(db, markers).compile();
      const slots = compiled.parameters.map((value) => {
        if (typeof value !== 'string' || !value.startsWith(MARKER))
          throw new Error(`precompiled query has a constant parameter: ${String(value)}`);
        return value.slice(MARKER.length);
      });
      statementNames.set(
        compiled.sql,
        `gatehouse_${createHash('sha256').update(compiled.sql).digest('hex').slice(0, 24)}`,
      );
      entry = { compiled, slots };
      cache.set(db, entry);
    }
    const parameters = entry.slots.map((slot) => values[slot]);
    const result = await db.executeQuery<R>({ ...entry.compiled, parameters });
    return result.rows;
  };
}

/** Errors after which a connection's prepared statement is stale: the plan's result type changed, or the statement is gone (a pooler switched server connections). */
const STALE_STATEMENT = new Set(['0A000', '26000']);

type QueryFn = (...args: unknown[]) => unknown;

/**
 * Makes a pg pool send precompiled statements as named prepared statements: pg prepares a name once per
 * connection and then only binds and executes. Every other query goes through unchanged. A prepared
 * statement that went stale on its connection (a migration changed a column's type: "cached plan must
 * not change result type"; or it no longer exists) is forgotten and the query retried once unnamed, so
 * the next use prepares it afresh instead of failing on that connection for good.
 */
export function preparingPool(pool: pg.Pool): pg.Pool {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as QueryFn;
    const connection = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection;
    (client as unknown as { query: QueryFn }).query = (text: unknown, values?: unknown, callback?: unknown) => {
      if (typeof values === 'function') [values, callback] = [undefined, values];
      const name = typeof text === 'string' ? statementNames.get(text) : undefined;
      if (name === undefined || callback !== undefined) {
        const config = name === undefined ? text : { name, text, values };
        const args = name === undefined ? [config, values] : [config];
        return callback === undefined ? query(...args) : query(...args, callback);
      }
      return (query({ name, text, values }) as Promise<unknown>).catch((err: { code?: string }) => {
        if (!err || !STALE_STATEMENT.has(err.code ?? '')) throw err;
        if (connection?.parsedStatements) delete connection.parsedStatements[name];
        return (query(`deallocate ${name}`) as Promise<unknown>).catch(() => undefined).then(() => query(text, values));
      });
    };
  });
  return pool;
}
