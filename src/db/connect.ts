import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/index.js';
import type { Database, SchemalessDb } from './database.js';
import { preparingPool } from './precompiled.js';
import { resilientPool } from './unavailable.js';

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

/** Opens Postgres when DATABASE_URL is set, else the embedded PGlite in DATA_DIR. */
export async function openDatabase(config: Pick<Config, 'database'>): Promise<DatabaseHandle> {
  const { url, poolMax, schema, dataDir, preparedStatements, connectTimeoutMs, statementTimeoutMs, queryTimeoutMs } =
    config.database;
  let root: SchemalessDb;
  let migrationRoot: SchemalessDb | undefined;
  let kind: DatabaseHandle['kind'];
  let location: string;
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
    // Loaded lazily: the WASM build is only needed for the embedded database.
    const { PGlite } = await import('@electric-sql/pglite');
    let pglite;
    if (dataDir === 'memory://') {
      pglite = new PGlite();
      location = 'memory://';
    } else {
      location = resolve(dataDir);
      await mkdir(location, { recursive: true });
      pglite = new PGlite(location);
    }
    await pglite.waitReady;
    root = new Kysely({ dialect: new PGliteDialect({ pglite }) });
    kind = 'pglite';
  }
  const db = root.withSchema(schema) as Kysely<Database>;
  const close = async () => {
    await Promise.all([root.destroy(), migrationRoot?.destroy()]);
  };
  return { db, root, ...(migrationRoot ? { migrationRoot } : {}), kind, location, close };
}
