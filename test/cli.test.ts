import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sql } from 'kysely';
import t from 'tap';
import { openDatabase } from '../src/db/connect.js';
import { knownMigrations } from '../src/db/migrate.js';
import { BASE_ENV, FILE_DATABASE_URL, TEST_DATABASE_URL, testConfig } from './helper.js';
import { CLI, finished, run, waitForLine } from './process.js';

const needsPostgres = !TEST_DATABASE_URL && 'needs a real Postgres (TEST_DATABASE_URL): PGlite is single-process';

function noStackTrace(t: Tap.Test, text: string): void {
  t.notMatch(text, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

t.test('help prints usage and exits 0', async (t) => {
  const res = await run([CLI, 'help'], {});
  t.equal(res.code, 0);
  t.match(res.stdout, /Usage: gatehouse \[command\]/);
});

t.test('an unknown command exits 2 with usage', async (t) => {
  const res = await run([CLI, 'frobnicate'], {});
  t.equal(res.code, 2);
  t.match(res.stderr, /unknown command: frobnicate/);
});

t.test('bad configuration stops the process with one line per problem and exit code 1', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: '99999' }, /^ {2}- PORT: ports must be within range 0 - 65535/m],
    [{ DATABASE_URL: 'mysql://db/x' }, /^ {2}- DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL$/m],
    [
      {
        NODE_ENV: 'production',
        ISSUER: 'http://auth.example.com',
        KEY_ENCRYPTION_SECRET: 'q8Jr2vN0xK7pL4mZ9tY6wB3cF1hD5gS0aE8uI2oP',
      },
      /^ {2}- ISSUER: must be https in production/m,
    ],
  ];
  for (const [env, expected] of cases) {
    const res = await run([CLI, 'serve'], env);
    t.equal(res.code, 1, `${Object.keys(env).join(',')} exits 1`);
    t.match(res.stderr, /^gatehouse: Invalid configuration:\n/);
    t.match(res.stderr, expected);
    t.equal(res.stdout, '', 'nothing started');
    noStackTrace(t, res.stderr);
  }
});

t.test('config prints every setting with secrets redacted and their sources', async (t) => {
  const res = await run([CLI, 'config', '--json'], {
    KEY_ENCRYPTION_SECRET: 'super-secret-value-abcdefghijklmnop1234',
    PORT: '4321',
  });
  t.equal(res.code, 0);
  const rows = JSON.parse(res.stdout) as Array<{ env: string; value: unknown; source: string }>;
  const byEnv = Object.fromEntries(rows.map((r) => [r.env, r]));
  t.same(byEnv.PORT, { env: 'PORT', value: 4321, source: 'env' });
  t.same(byEnv.KEY_ENCRYPTION_SECRET, { env: 'KEY_ENCRYPTION_SECRET', value: '[redacted]', source: 'env' });
  t.notMatch(res.stdout, /super-secret-value/);
  const text = await run([CLI, 'config'], { PORT: '4321' });
  t.match(text.stdout, /^PORT\s+4321\s+\(env\)$/m);
});

t.test('migrate up then status on the embedded database', async (t) => {
  const dir = t.testdir();
  const env = { ...BASE_ENV, DATA_DIR: join(dir, 'pglite') };
  const up = await run([CLI, 'migrate', 'up'], env);
  t.equal(up.code, 0, up.stderr);
  const known = await knownMigrations();
  t.equal(up.stdout, known.map((n) => `applied ${n}\n`).join(''));
  const again = await run([CLI, 'migrate', 'up'], env);
  t.equal(again.stdout, 'already up to date\n');
  const status = await run([CLI, 'migrate', 'status', '--json'], env);
  const rows = JSON.parse(status.stdout) as Array<{ name: string; executedAt: string | null }>;
  t.same(
    rows.map((r) => r.name),
    known,
  );
  t.ok(
    rows.every((r) => r.executedAt),
    'all applied',
  );
});

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
    DATA_DIR: 'memory://',
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
