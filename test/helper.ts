import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import tap from 'tap';
import { buildApp } from '../src/app.js';
import { type Config, loadConfig } from '../src/config/index.js';
import { type DatabaseHandle, openDatabase } from '../src/db/connect.js';
import { ISSUER } from './kit/issuer.js';
import { migratedTemplate, openMigratedPglite, TEST_SCHEMA } from './kit/database.js';

/** A real Postgres for this run, or undefined for the embedded PGlite. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;

/** Settings every test starts from; a test overrides what it exercises. */
export const BASE_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  ISSUER,
  KEY_ENCRYPTION_SECRET: 'test-only-key-encryption-secret-8f3kd92md7x1q0zp',
};

/**
 * One database per test file (Postgres: a database cloned from the migrated template; PGlite: in memory,
 * loaded from the migrated dump; test/kit/database.ts), so files run in parallel without seeing each
 * other: Kysely's migrator introspects every schema of its database, and another file dropping its
 * schema mid-scan would fail it.
 */
const fileSchema = TEST_SCHEMA;
const fileDatabaseName = `t_${randomBytes(6).toString('hex')}`;

async function createFileDatabase(adminUrl: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${fileDatabaseName} template ${await migratedTemplate(adminUrl)}`);
  await admin.end();
  tap.teardown(async () => {
    await closeShared();
    const dropper = new pg.Client({ connectionString: adminUrl });
    await dropper.connect();
    await dropper.query(`drop database if exists ${fileDatabaseName} with (force)`);
    await dropper.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${fileDatabaseName}`;
  return url.toString();
}

/** This file's own Postgres database (created when the file loads, dropped when it ends); undefined on PGlite. */
export const FILE_DATABASE_URL: string | undefined = TEST_DATABASE_URL
  ? await createFileDatabase(TEST_DATABASE_URL)
  : undefined;

let shared: Promise<DatabaseHandle> | undefined;
let sharedClosed = false;
async function closeShared(): Promise<void> {
  if (!shared || sharedClosed) return;
  sharedClosed = true;
  await (await shared).close();
}

/** Environment for a test config: this file's database plus overrides. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const db: Record<string, string> = FILE_DATABASE_URL
    ? { DATABASE_URL: FILE_DATABASE_URL, DATABASE_SCHEMA: fileSchema }
    : { DATA_DIR: 'memory://', DATABASE_SCHEMA: fileSchema };
  return { ...BASE_ENV, ...db, ...overrides };
}

/** A validated config for tests, on this file's database. */
export function testConfig(overrides: Record<string, string> = {}): Readonly<Config> {
  return loadConfig(testEnv(overrides)).config;
}

/** This file's database handle (already migrated), opened once and closed when the file's tests end. */
export function testDatabase(): Promise<DatabaseHandle> {
  if (!shared) {
    shared = FILE_DATABASE_URL ? openDatabase(testConfig()) : openMigratedPglite();
    tap.teardown(closeShared);
  }
  return shared;
}

export interface TestAppOptions {
  /** Capture log lines (parsed JSON) into this array. */
  logs?: Array<Record<string, unknown>>;
}

/** Builds the app on this file's database with test settings; closed when `t` ends. */
export async function buildTestApp(
  t: Tap.Test,
  overrides: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<FastifyInstance> {
  const database = await testDatabase();
  const logs = options.logs;
  const logStream = logs
    ? new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line));
          cb();
        },
      })
    : undefined;
  const app = await buildApp(testConfig(overrides), { database, ...(logStream ? { logStream } : {}) });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Tap {
    type Test = import('tap').Test;
  }
}
