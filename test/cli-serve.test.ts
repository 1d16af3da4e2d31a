import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sql } from 'kysely';
import t from 'tap';
import { openDatabase } from '../src/db/connect.js';
import { knownMigrations } from '../src/db/migrate.js';
import { BASE_ENV, FILE_DATABASE_URL, TEST_DATABASE_URL, testConfig } from './helper.js';
import { migratedPgliteDataDir } from './kit/database.js';
import { CLI, finished, run, waitForLine } from './process.js';

// The CLI's commands that start servers or migrate a real Postgres (split from cli.test.ts).

const needsPostgres = !TEST_DATABASE_URL && 'needs a real Postgres (TEST_DATABASE_URL): PGlite is single-process';

t.test('migrate up then status against Postgres', { skip: needsPostgres }, async (t) => {
  const schema = `cli_${randomBytes(4).toString('hex')}`;
  const env = { ...BASE_ENV, DATABASE_URL: FILE_DATABASE_URL!, DATABASE_SCHEMA: schema };
  t.teardown(async () => {
    const h = await openDatabase(testConfig({ DATABASE_SCHEMA: schema }));
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(h.root);
    await h.close();
  });
  const up = await run([CLI, 'migrate', 'up'], env);
  t.equal(up.code, 0, up.stderr);
  const status = await run([CLI, 'migrate', 'status'], env);
  t.equal(status.code, 0);
  for (const name of await knownMigrations())
    t.match(status.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z  ${name}$`, 'm'));
  const down = await run([CLI, 'migrate', 'down'], env);
  t.match(down.stdout, /^reverted /);
  const after = await run([CLI, 'migrate', 'status'], env);
  t.match(after.stdout, /^pending\s+/m);
});

t.test(
  'two servers starting at once on an empty Postgres migrate once and both become ready',
  { skip: needsPostgres },
  async (t) => {
    const schema = `race_${randomBytes(4).toString('hex')}`;
    const env = {
      ...BASE_ENV,
      LOG_LEVEL: 'info',
      DATABASE_URL: FILE_DATABASE_URL!,
      DATABASE_SCHEMA: schema,
      PORT: '0',
    };
    const children = [0, 1].map(() =>
      spawn(process.execPath, [CLI, 'serve'], {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const done = children.map((c) => finished(c, 90_000));
    t.teardown(async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      const h = await openDatabase(testConfig({ DATABASE_SCHEMA: schema }));
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(h.root);
      await h.close();
    });
    const ports = await Promise.all(
      children.map((c) => waitForLine(c, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/)),
    );
    for (const match of ports) {
      const res = await fetch(`http://127.0.0.1:${match[1]}/readyz`);
      t.equal(res.status, 200, 'ready');
    }
    for (const c of children) c.kill('SIGTERM');
    const outputs = await Promise.all(done);
    t.same(
      outputs.map((o) => o.code),
      [0, 0],
      'both exit cleanly',
    );
    const appliers = outputs.filter((o) => /"msg":"applied migrations"/.test(o.stdout));
    t.equal(appliers.length, 1, 'exactly one process applied the migrations');
    const h = await openDatabase(testConfig({ DATABASE_SCHEMA: schema }));
    const rows = await sql<{
      n: number;
    }>`select count(*)::int as n from ${sql.table(`${schema}.kysely_migration`)}`.execute(h.root);
    await h.close();
    t.equal(rows.rows[0]!.n, (await knownMigrations()).length);
  },
);

t.test('SIGTERM during a slow request lets it finish, then exits 0', async (t) => {
  const fixture = new URL('./fixtures/slow-server.mjs', import.meta.url).pathname;
  const env = {
    ...BASE_ENV,
    LOG_LEVEL: 'info',
    // A copy of the run's migrated PGlite data directory: the server skips initdb (test/kit/database.ts).
    DATA_DIR: await migratedPgliteDataDir(join(t.testdir(), 'pglite')),
    PORT: '0',
    SLOW_MS: '1500',
    SHUTDOWN_TIMEOUT_SECONDS: '10',
  };
  const child = spawn(process.execPath, [fixture], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = finished(child, 60_000);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const [, port] = await waitForLine(child, /LISTENING (\d+)/);
  const started = Date.now();
  const inFlight = waitForLine(child, /SLOW REQUEST STARTED/);
  const slow = fetch(`http://127.0.0.1:${port}/slow`);
  await inFlight;
  child.kill('SIGTERM');
  const res = await slow;
  t.equal(res.status, 200, 'the in-flight request completed');
  t.same(await res.json(), { finished: true });
  t.ok(Date.now() - started >= 1400, 'it ran its full time');
  const out = await done;
  t.equal(out.code, 0, 'exit code 0');
  t.match(out.stdout, /"msg":"shutting down"/);
  t.match(out.stdout, /"msg":"shut down cleanly"/);
  await t.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'no longer accepting connections');
});
