import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { openDatabase } from '../src/db/connect.js';
import { appliedMigrations, knownMigrations, migrateDown, migrateUp, migrationStatus } from '../src/db/migrate.js';
import { TEST_DATABASE_URL, testConfig, testDatabase } from './helper.js';

async function tablesIn(schema: string): Promise<string[]> {
  const { root } = await testDatabase();
  const res = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = ${schema} order by table_name`.execute(root);
  return res.rows.map((r) => r.table_name);
}

t.test('a fresh database migrates up, reports status, and migrates all the way down and up again', async (t) => {
  const { root } = await testDatabase();
  const schema = `mig_${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(root);
  });
  const known = await knownMigrations();
  t.ok(known.length >= 1);
  t.same(await appliedMigrations(root, schema), [], 'nothing applied in a fresh schema');

  t.same(await migrateUp(root, schema), known, 'every migration applies, in order');
  t.same(await migrateUp(root, schema), [], 'a second run has nothing to do');
  const tables = await tablesIn(schema);
  for (const table of ['clients', 'signing_keys', 'kysely_migration'])
    t.ok(tables.includes(table), `${table} exists in ${schema}`);
  t.notOk((await tablesIn('public')).includes('clients'), 'nothing is created outside the schema');

  const status = await migrationStatus(root, schema);
  t.same(
    status.map((s) => s.name),
    known,
  );
  t.ok(
    status.every((s) => s.executedAt instanceof Date),
    'each has its execution time',
  );

  t.same(await migrateDown(root, schema, true), [...known].reverse(), 'down --all reverts newest first');
  const after = await tablesIn(schema);
  t.notOk(after.includes('clients') || after.includes('signing_keys'), 'tables are gone');
  t.ok(
    (await migrationStatus(root, schema)).every((s) => s.executedAt === null),
    'all pending again',
  );
  t.same(await migrateUp(root, schema), known, 'and up again');
});

t.test('migrate down without --all reverts only the newest migration', async (t) => {
  const { root } = await testDatabase();
  const schema = `mig_${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(root);
  });
  const known = await knownMigrations();
  await migrateUp(root, schema);
  t.same(await migrateDown(root, schema), [known.at(-1)]);
  t.same(await appliedMigrations(root, schema), known.slice(0, -1));
});

t.test(
  'replicas migrating at once apply each migration exactly once',
  { skip: !TEST_DATABASE_URL && 'needs a real Postgres (TEST_DATABASE_URL): PGlite is single-process' },
  async (t) => {
    const schema = `mig_${randomBytes(4).toString('hex')}`;
    const config = testConfig({ DATABASE_SCHEMA: schema });
    const handles = await Promise.all(Array.from({ length: 5 }, () => openDatabase(config)));
    t.teardown(async () => {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(handles[0]!.root);
      await Promise.all(handles.map((h) => h.close()));
    });
    const results = await Promise.all(handles.map((h) => migrateUp(h.root, schema)));
    const known = await knownMigrations();
    t.same(results.flat().sort(), [...known].sort(), 'each migration was applied by exactly one replica');
    const rows = await sql<{
      n: number;
    }>`select count(*)::int as n from ${sql.table(`${schema}.kysely_migration`)}`.execute(handles[0]!.root);
    t.equal(rows.rows[0]!.n, known.length);
  },
);

t.test(
  'a migration waits on another replica holding the lock longer than a request may wait for a query',
  { skip: !TEST_DATABASE_URL && 'needs a real Postgres (TEST_DATABASE_URL): PGlite is single-process' },
  async (t) => {
    const schema = `mig_${randomBytes(4).toString('hex')}`;
    // Request timeouts far below how long the other replica holds the migration lock.
    const config = testConfig({
      DATABASE_SCHEMA: schema,
      DATABASE_QUERY_TIMEOUT_MS: '300',
      DATABASE_STATEMENT_TIMEOUT_MS: '200',
    });
    const [holder, migrating] = await Promise.all([openDatabase(config), openDatabase(config)]);
    t.ok(holder.migrationRoot && migrating.migrationRoot, 'Postgres handles carry a migration root');
    // The holder and the clean-up use the timeout-free root too: only the migration under test matters, and
    // a busy machine can make any statement outlast 200 ms.
    const holderRoot = holder.migrationRoot ?? holder.root;
    t.teardown(async () => {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(holderRoot);
      await Promise.all([holder.close(), migrating.close()]);
    });
    const key = `gatehouse.migrate.${schema}`;
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => (locked = resolve));
    const released = holderRoot.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(hashtext(${key}))`.execute(conn);
      locked();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
    });
    await holding;
    const applied = await migrateUp(migrating.migrationRoot ?? migrating.root, schema);
    await released;
    t.same(applied, await knownMigrations(), 'every migration applied once the lock was free');
  },
);
