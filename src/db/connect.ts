import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/index.js';
import { type DataDirLock, lockDataDir } from './data-dir-lock.js';
import type { Database, SchemalessDb } from './database.js';
import { preparingPool } from './precompiled.js';
import { isDatabaseUnavailable, resilientPool } from './unavailable.js';
import { DomainError } from '../lib/errors.js';

/** An open database: the schema-bound Kysely instance, which engine it runs on, and how to close it. */
export interface DatabaseHandle {
  db: Kysely<Database>;
  /** The same connection pool without the schema prefix, for schema-level statements. */
  root: SchemalessDb;
  /**
   * For migrations: the root on its own one-connection pool without the request timeouts, because a
   * migration step (an index build) or waiting on another replica's migration lock may take longer than a
   * request may. Absent where the root has no timeouts (PGlite); use `migrationRoot ?? root`.
   */
  migrationRoot?: SchemalessDb;
  kind: 'postgres' | 'pglite';
  /** Where the data lives, safe to log (no password). */
  location: string;
  close(): Promise<void>;
}

/** How a process opens the database. */
export interface OpenOptions {
  /** What this process is, as the embedded database's lock names it to a second process (`gatehouse serve`). */
  owner?: string;
}

/**
 * Opens Postgres when DATABASE_URL is set, else the embedded PGlite in DATA_DIR, locked to this process
 * (PGlite is single-process: a second one on the same directory would diverge from the first and lose
 * writes), so a second process is refused with DataDirInUseError.
 */
export async function openDatabase(
  config: Pick<Config, 'database'>,
  { owner = 'gatehouse serve' }: OpenOptions = {},
): Promise<DatabaseHandle> {
  const { url, poolMax, schema, dataDir, preparedStatements, connectTimeoutMs, statementTimeoutMs, queryTimeoutMs } =
    config.database;
  let root: SchemalessDb;
  let migrationRoot: SchemalessDb | undefined;
  let kind: DatabaseHandle['kind'];
  let location: string;
  let lock: DataDirLock | undefined;
  if (url) {
    // Fail fast: a request waits at most connectTimeoutMs for a connection and queryTimeoutMs for an answer,
    // and the server cancels a statement after statementTimeoutMs (0 leaves each off).
    const pool = new pg.Pool({
      connectionString: url,
      max: poolMax,
      application_name: 'gatehouse',
      ...(connectTimeoutMs > 0 ? { connectionTimeoutMillis: connectTimeoutMs } : {}),
      ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
      ...(queryTimeoutMs > 0 ? { query_timeout: queryTimeoutMs } : {}),
    });
    // Lost connections (idle or checked out) must not crash the process; the query in flight reports them.
    resilientPool(preparedStatements ? preparingPool(pool) : pool);
    root = new Kysely({ dialect: new PostgresDialect({ pool }) });
    // Connects only when a migration runs; its idle connection closes after pg's idle timeout.
    const migrationPool = new pg.Pool({ connectionString: url, max: 1, application_name: 'gatehouse-migrate' });
    resilientPool(migrationPool);
    migrationRoot = new Kysely({ dialect: new PostgresDialect({ pool: migrationPool }) });
    kind = 'postgres';
    const parsed = new URL(url);
    location = `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } else {
    const path = dataDir === 'memory://' ? undefined : resolve(dataDir);
    if (path !== undefined) {
      // Before loading PGlite, so a second process is refused at once.
      await mkdir(path, { recursive: true });
      lock = await lockDataDir(path, dataDir, owner);
    }
    try {
      // Loaded lazily: the WASM build is only needed for the embedded database.
      const { PGlite } = await import('@electric-sql/pglite');
      const pglite = path === undefined ? new PGlite() : new PGlite(path);
      await pglite.waitReady;
      root = new Kysely({ dialect: new PGliteDialect({ pglite }) });
    } catch (err) {
      await lock?.release();
      throw err;
    }
    location = path ?? 'memory://';
    kind = 'pglite';
  }
  const db = root.withSchema(schema) as Kysely<Database>;
  const close = async () => {
    try {
      await Promise.all([root.destroy(), migrationRoot?.destroy()]);
    } finally {
      await lock?.release();
    }
  };
  return { db, root, ...(migrationRoot ? { migrationRoot } : {}), kind, location, close };
}

/** Postgres could not be reached at start (or by a CLI command); the message names DATABASE_URL's host, never its password. */
export class DatabaseUnreachableError extends DomainError {
  constructor(location: string, reason: string, waitedMs: number) {
    super(
      'unavailable',
      `cannot reach Postgres at ${location} (DATABASE_URL)${waitedMs > 0 ? ` after trying for ${Math.round(waitedMs / 1000)} s` : ''}: ${reason}`,
    );
  }
}

/** One failed attempt to reach Postgres at start, for the caller's log line. */
export interface DatabaseRetry {
  attempt: number;
  /** Milliseconds until the next attempt. */
  retryInMs: number;
  /** What went wrong, from the driver (addresses and codes, no credentials). */
  reason: string;
}

export interface WaitOptions {
  /** How long to keep trying, in milliseconds; 0 tries once. */
  waitMs: number;
  /** Called before each wait between attempts. */
  onRetry?: (retry: DatabaseRetry) => void;
}

/** The first wait between attempts, doubled after each, up to the last. */
const FIRST_RETRY_MS = 250;
const LONGEST_RETRY_MS = 8000;

/** What a connection failure says, unwrapped from DomainError and AggregateError (`localhost` tries ::1 and 127.0.0.1). */
function reasonOf(err: unknown): string {
  const cause = err instanceof DomainError && err.cause !== undefined ? err.cause : err;
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(reasonOf).join('; ');
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return cause.message || (typeof code === 'string' ? code : cause.name);
  }
  return String(cause);
}

/**
 * Waits until Postgres answers (`select 1`), retrying with exponential backoff (250 ms doubling to 8 s)
 * while it refuses or drops connections or says it is starting up, for at most `waitMs`; then throws
 * DatabaseUnreachableError. Errors that waiting cannot fix (a wrong password, a missing database) are
 * thrown at once. The embedded database needs no wait.
 */
export async function waitForDatabase(handle: DatabaseHandle, { waitMs, onRetry }: WaitOptions): Promise<void> {
  if (handle.kind !== 'postgres') return;
  const started = Date.now();
  let delay = FIRST_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`select 1`.execute(handle.root);
      return;
    } catch (err) {
      if (!isDatabaseUnavailable(err)) throw err;
      const left = started + waitMs - Date.now();
      if (left <= 0) throw new DatabaseUnreachableError(handle.location, reasonOf(err), waitMs);
      const retryInMs = Math.min(delay, left);
      onRetry?.({ attempt, retryInMs, reason: reasonOf(err) });
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
      delay = Math.min(delay * 2, LONGEST_RETRY_MS);
    }
  }
}
