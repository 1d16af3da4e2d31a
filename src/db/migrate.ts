import { inspect } from 'node:util';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { SchemalessDb } from './database.js';
import { FileMigrationProvider, Migrator, NO_MIGRATIONS, type MigrationResult } from 'kysely/migration';
import { DomainError } from '../lib/errors.js';

/** The migrations folder: `migrations/` beside `src/` (or `dist/migrations` when built). */
export const migrationFolder = fileURLToPath(new URL('../../migrations', import.meta.url));

const provider = new FileMigrationProvider({ fs, path, migrationFolder });

export interface MigrationState {
  name: string;
  executedAt: Date | null;
}

/** A migration run that failed: the schema is not what this build needs until an operator looks. */
export class MigrationError extends DomainError {
  constructor(
    message: string,
    readonly results: readonly MigrationResult[],
    cause?: unknown,
  ) {
    super('misconfigured', message, cause === undefined ? {} : { cause });
  }
}

function migrator(db: SchemalessDb, schema: string): Migrator {
  return new Migrator({ db: db.withSchema(schema), provider, migrationTableSchema: schema });
}

/**
 * Runs `fn` holding a session-level advisory lock named after the schema, on one connection, so that
 * replicas starting together migrate one at a time and the later ones find nothing to do.
 */
async function withMigrationLock<T>(
  root: SchemalessDb,
  schema: string,
  fn: (conn: SchemalessDb) => Promise<T>,
): Promise<T> {
  const key = `gatehouse.migrate.${schema}`;
  return root.connection().execute(async (conn) => {
    // A migration (or waiting for another replica's) may take longer than DATABASE_STATEMENT_TIMEOUT_MS;
    // callers pass the handle's migrationRoot, whose pool has no client-side query timeout either.
    await sql`set statement_timeout = 0`.execute(conn);
    await sql`select pg_advisory_lock(hashtext(${key}))`.execute(conn);
    try {
      await sql`create schema if not exists ${sql.id(schema)}`.execute(conn);
      return await fn(conn);
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
      await sql`reset statement_timeout`.execute(conn);
    }
  });
}

function check(label: string, set: { error?: unknown; results?: MigrationResult[] }): MigrationResult[] {
  const results = set.results ?? [];
  if (set.error) {
    const failed = results.find((r) => r.status === 'Error');
    const cause = set.error instanceof Error ? set.error.message : inspect(set.error);
    throw new MigrationError(
      `${label} failed${failed ? ` at ${failed.migrationName}` : ''}: ${cause}`,
      results,
      set.error,
    );
  }
  return results;
}

/** Applies every pending migration; returns the names applied (empty when current). */
export async function migrateUp(root: SchemalessDb, schema: string): Promise<string[]> {
  return withMigrationLock(root, schema, async (conn) => {
    const results = check('migrate up', await migrator(conn, schema).migrateToLatest());
    return results.map((r) => r.migrationName);
  });
}

/** Reverts the newest migration, or all of them with `all`; returns the names reverted. */
export async function migrateDown(root: SchemalessDb, schema: string, all = false): Promise<string[]> {
  return withMigrationLock(root, schema, async (conn) => {
    const m = migrator(conn, schema);
    const results = check('migrate down', all ? await m.migrateTo(NO_MIGRATIONS) : await m.migrateDown());
    return results.map((r) => r.migrationName);
  });
}

/** Every known migration and when it ran (null when pending). */
export async function migrationStatus(root: SchemalessDb, schema: string): Promise<MigrationState[]> {
  const all = await migrator(root, schema).getMigrations();
  return all.map((m) => ({ name: m.name, executedAt: m.executedAt ?? null }));
}

/** Names of the migrations this build ships, in order. */
export async function knownMigrations(): Promise<string[]> {
  return Object.keys(await provider.getMigrations()).sort();
}

/** Names of the migrations recorded as applied in the database; empty when none has run. */
export async function appliedMigrations(root: SchemalessDb, schema: string): Promise<string[]> {
  const exists = await sql<{
    exists: boolean;
  }>`select to_regclass(${`${schema}.kysely_migration`}) is not null as exists`.execute(root);
  if (!exists.rows[0]?.exists) return [];
  const rows = await root.withSchema(schema).selectFrom('kysely_migration').select('name').orderBy('name').execute();
  return rows.map((r: { name: string }) => r.name);
}
