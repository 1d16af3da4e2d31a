import { sql } from 'kysely';
import type { SchemalessDb } from '../../src/db/database.js';
import t from 'tap';
import { openDatabase } from '../../src/db/connect.js';
import { precompiled, preparedName } from '../../src/db/precompiled.js';
import { TEST_DATABASE_URL, testConfig, testDatabase } from '../helper.js';

interface Params extends Record<string, unknown> {
  a: number;
  b: string;
}

const echo = precompiled<Params, { a: number; b: string }>((db: SchemalessDb, p) =>
  db.selectNoFrom([sql<number>`${p.a}::int + 1`.as('a'), sql<string>`upper(${p.b}::text)`.as('b')]),
);

t.test("a precompiled query runs with each call's parameters", async (t) => {
  const { db } = await testDatabase();
  t.same(await echo(db, { a: 1, b: 'x' }), [{ a: 2, b: 'X' }]);
  t.same(
    await echo(db, { a: 41, b: 'gatehouse' }),
    [{ a: 42, b: 'GATEHOUSE' }],
    'the same compiled statement, new values',
  );
  const compiled = db
    .selectNoFrom([
      sql<number>`${'\u0000gatehouse-param:a'}::int + 1`.as('a'),
      sql<string>`upper(${'\u0000gatehouse-param:b'}::text)`.as('b'),
    ])
    .compile();
  t.match(preparedName(compiled.sql), /^gatehouse_[0-9a-f]{24}$/, 'its SQL text has a statement name');
});

t.test('a constant parameter is refused when the query is first compiled', async (t) => {
  const { db } = await testDatabase();
  const constant = precompiled<Params, { n: number }>((d: SchemalessDb, p) =>
    d.selectNoFrom([sql<number>`${p.a}::int + ${7}::int`.as('n')]),
  );
  await t.rejects(constant(db, { a: 1, b: '' }), /constant parameter: 7/);
});

t.test(
  'on Postgres the statement is prepared once per connection and reused',
  { skip: TEST_DATABASE_URL ? false : 'PGlite has no named prepared statements: needs TEST_DATABASE_URL' },
  async (t) => {
    const handle = await openDatabase(testConfig({ DATABASE_POOL_MAX: '1' }));
    t.teardown(() => handle.close());
    for (let i = 0; i < 3; i++) t.same(await echo(handle.db, { a: i, b: 'p' }), [{ a: i + 1, b: 'P' }]);
    const rows = await sql<{
      name: string;
    }>`select name from pg_prepared_statements where name like 'gatehouse\\_%'`.execute(handle.root);
    t.equal(rows.rows.length, 1, 'one named statement on the only connection, reused by every call');
  },
);

t.test(
  'a prepared statement gone stale on its connection is re-prepared, not failed for good',
  { skip: TEST_DATABASE_URL ? false : 'needs TEST_DATABASE_URL (named prepared statements are a Postgres feature)' },
  async (t) => {
    const handle = await openDatabase(testConfig({ DATABASE_POOL_MAX: '1' }));
    t.teardown(() => handle.close());
    const table = `stale_${Date.now()}`;
    await sql`create table ${sql.table(table)} (id int primary key, v int)`.execute(handle.root);
    t.teardown(() => sql`drop table if exists ${sql.table(table)}`.execute(handle.root));
    await sql`insert into ${sql.table(table)} values (1, 10)`.execute(handle.root);
    const read = precompiled<{ id: number }, { v: number | string }>((db: SchemalessDb, p) =>
      db.selectFrom(table).select('v').where('id', '=', p.id),
    );
    t.same(await read(handle.root, { id: 1 }), [{ v: 10 }]);
    // A migration changing a returned column's type: Postgres refuses the cached plan ("must not change result type").
    await sql`alter table ${sql.table(table)} alter column v type bigint`.execute(handle.root);
    t.same(
      await read(handle.root, { id: 1 }),
      [{ v: '10' }],
      'the first call after it succeeds (bigint comes back as a string)',
    );
    t.same(await read(handle.root, { id: 1 }), [{ v: '10' }], 'and so does every later one, prepared afresh');
    const rows = await sql<{
      n: number;
    }>`select count(*)::int as n from pg_prepared_statements where name like 'gatehouse\\_%'`.execute(handle.root);
    t.ok(rows.rows[0]!.n >= 1, 'the statement is prepared again on the connection');
  },
);

t.test(
  'DATABASE_PREPARED_STATEMENTS=false sends every statement unnamed (for transaction-pooling pgbouncer)',
  { skip: TEST_DATABASE_URL ? false : 'needs TEST_DATABASE_URL' },
  async (t) => {
    const handle = await openDatabase(testConfig({ DATABASE_POOL_MAX: '1', DATABASE_PREPARED_STATEMENTS: 'false' }));
    t.teardown(() => handle.close());
    t.same(await echo(handle.db, { a: 2, b: 'q' }), [{ a: 3, b: 'Q' }]);
    const rows = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(handle.root);
    t.equal(rows.rows[0]!.n, 0, 'nothing prepared on the connection');
  },
);
