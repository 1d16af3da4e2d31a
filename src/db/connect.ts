import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/index.js';
import type { Database, SchemalessDb } from './database.js';
import { preparingPool } from './precompiled.js';

/** An open database: the schema-bound Kysely instance, which engine it runs on, and how to close it. */
export interface DatabaseHandle {
  db: Kysely<Database>;
  /** The same connection pool without the schema prefix, for schema-level statements. */
  root: SchemalessDb;
  kind: 'postgres' | 'pglite';
  /** Where the data lives, safe to log (no password). */
  location: string;
  close(): Promise<void>;
}

/** Opens Postgres when DATABASE_URL is set, else the embedded PGlite in DATA_DIR. */
export async function openDatabase(config: Pick<Config, 'database'>): Promise<DatabaseHandle> {
  const { url, poolMax, schema, dataDir, preparedStatements } = config.database;
  let root: SchemalessDb;
  let kind: DatabaseHandle['kind'];
  let location: string;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: poolMax, application_name: 'gatehouse' });
    // An idle client losing its server must not crash the process; the next query reports it.
    pool.on('error', () => {});
    root = new Kysely({ dialect: new PostgresDialect({ pool: preparedStatements ? preparingPool(pool) : pool }) });
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
  return { db, root, kind, location, close: () => root.destroy() };
}
