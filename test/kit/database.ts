import { createHash } from 'node:crypto';
import { cp, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DatabaseHandle } from '../../src/db/connect.js';
import type { Database, SchemalessDb } from '../../src/db/database.js';
import { migrateUp, migrationFolder } from '../../src/db/migrate.js';

/**
 * Migrate once per run, copy per test file. Creating a database and applying every migration costs
 * each file seconds (PGlite's initdb alone is most of it on a loaded machine), so the migrated state is
 * made once, keyed by the content of the migrations and the engine's version, and each file gets its
 * own copy of it: on Postgres a database cloned from a template database, on PGlite a data directory
 * loaded from a dump. Files still never share a database, so no test sees another's rows.
 */

/** A Kysely with no table types, for migrations and the handle's schema-less `root`. */
type Untyped = Record<string, never>;

/** The schema every test file's database is migrated into. */
export const TEST_SCHEMA = 'gatehouse';

/** How long a waiter trusts another process's lock before making the copy itself. */
const LOCK_STALE_MS = 180_000;

let hashed: Promise<string> | undefined;

/** sha256 over the migration files (names and contents) and the PGlite version: a new migration makes a new cache. */
export function migrationsHash(): Promise<string> {
  hashed ??= (async () => {
    const hash = createHash('sha256');
    // The package's exports do not include package.json, so it is read from node_modules directly.
    const manifest = new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url);
    const pglite = JSON.parse(await readFile(manifest, 'utf8')) as { version: string };
    hash.update(`pglite ${pglite.version}\0schema ${TEST_SCHEMA}\0`);
    for (const name of (await readdir(migrationFolder)).sort()) {
      hash.update(`${name}\0`);
      hash.update(await readFile(join(migrationFolder, name)));
    }
    return hash.digest('hex').slice(0, 16);
  })();
  return hashed;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Makes `path` once across processes: the first to take `path.lock` builds it into a temporary name and
 * renames it into place (atomic), the others wait for it; a lock older than LOCK_STALE_MS is ignored.
 */
async function once(path: string, make: (tmp: string) => Promise<void>): Promise<string> {
  const lock = `${path}.lock`;
  for (;;) {
    if (await exists(path)) return path;
    const handle = await open(lock, 'wx').catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      return undefined;
    });
    if (handle) {
      try {
        await handle.close();
        const tmp = `${path}.${process.pid}.tmp`;
        await rm(tmp, { recursive: true, force: true });
        await make(tmp);
        await rename(tmp, path);
        return path;
      } finally {
        await rm(lock, { force: true });
      }
    }
    const age = await stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > LOCK_STALE_MS) await rm(lock, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A dump (tar) of a PGlite data directory with every migration applied, made once per migrationsHash(). */
export async function migratedPgliteDump(): Promise<string> {
  const path = join(tmpdir(), `gatehouse-test-pglite-${await migrationsHash()}.tar`);
  return once(path, async (tmp) => {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = new PGlite();
    await pglite.waitReady;
    const root = new Kysely<Untyped>({ dialect: new PGliteDialect({ pglite }) });
    await migrateUp(root, TEST_SCHEMA);
    const dump = await pglite.dumpDataDir('none');
    await root.destroy();
    await writeFile(tmp, Buffer.from(await dump.arrayBuffer()));
  });
}

/** An in-memory PGlite loaded from the migrated dump: this file's own database, already migrated. */
export async function openMigratedPglite(): Promise<DatabaseHandle> {
  const dump = await readFile(await migratedPgliteDump());
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = new PGlite({ loadDataDir: new Blob([dump]) });
  await pglite.waitReady;
  const root: SchemalessDb = new Kysely<Untyped>({ dialect: new PGliteDialect({ pglite }) });
  const db = root.withSchema(TEST_SCHEMA) as Kysely<Database>;
  return { db, root, kind: 'pglite', location: 'memory://', close: () => root.destroy() };
}

/** A PGlite data directory on disk with every migration applied, made once per migrationsHash(). */
async function migratedPgliteDir(): Promise<string> {
  const path = join(tmpdir(), `gatehouse-test-pglite-${await migrationsHash()}.d`);
  return once(path, async (tmp) => {
    const dump = await readFile(await migratedPgliteDump());
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = new PGlite(tmp, { loadDataDir: new Blob([dump]) });
    await pglite.waitReady;
    await pglite.close();
  });
}

/**
 * A fresh copy of the migrated PGlite data directory at `dir` (created), for a spawned process's
 * DATA_DIR: opening an existing directory skips the initdb that `memory://` pays in every process.
 */
export async function migratedPgliteDataDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await cp(await migratedPgliteDir(), dir, { recursive: true });
  return dir;
}

/**
 * The name of a template database on the Postgres at `adminUrl` with every migration applied, made
 * once per migrationsHash() (under an advisory lock, so files starting together wait for one maker).
 * A file's database is then `CREATE DATABASE … TEMPLATE` it, a file copy on the server.
 */
export async function migratedTemplate(adminUrl: string): Promise<string> {
  const name = `gatehouse_tpl_${await migrationsHash()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query('select pg_advisory_lock(hashtext($1))', [name]);
    const found = await admin.query<{ datistemplate: boolean }>(
      'select datistemplate from pg_database where datname = $1',
      [name],
    );
    if (found.rows[0]?.datistemplate === true) return name;
    // Present but not marked: a maker died half-way; start again.
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const root = new Kysely<Untyped>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.toString(), max: 1 }) }),
    });
    try {
      await migrateUp(root, TEST_SCHEMA);
    } finally {
      await root.destroy();
    }
    // A template must have no sessions when it is copied; marking it last also says "complete".
    await admin.query(`alter database ${name} is_template true allow_connections false`);
    return name;
  } finally {
    await admin.query('select pg_advisory_unlock(hashtext($1))', [name]).catch(() => {});
    await admin.end();
  }
}

/** Makes the migrated copy source this run will use (tap's `before`, so the first files do not race to it). */
export async function prepareMigrated(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL;
  if (url) await migratedTemplate(url);
  else await migratedPgliteDir();
}
