import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { knownMigrations } from '../src/db/migrate.js';
import { BASE_ENV } from './helper.js';
import { migratedPgliteDataDir } from './kit/database.js';
import { CLI, run } from './process.js';

// The commands that start servers or need Postgres are in cli-serve.test.ts, so neither file nears
// tap's per-file timeout on a loaded machine.

function noStackTrace(t: Tap.Test, text: string): void {
  t.notMatch(text, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

t.test('help prints usage and exits 0', async (t) => {
  const res = await run([CLI, 'help'], {});
  t.equal(res.code, 0);
  t.match(res.stdout, /Usage: gatehouse \[command\]/);
});

t.test('--version and -v print the package version alone', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  for (const flag of ['--version', '-v']) {
    const res = await run([CLI, flag], {});
    t.equal(res.code, 0, flag);
    t.equal(res.stdout, `${version}\n`, flag);
    t.equal(res.stderr, '');
  }
});

t.test('every command has its own help, listed in the global help', async (t) => {
  const global = await run([CLI, '--help'], {});
  t.equal(global.code, 0);
  const commands = ['serve', 'migrate', 'keys', 'clients', 'users', 'janitor', 'config'];
  for (const command of commands) t.match(global.stdout, new RegExp(`^  ${command} `, 'm'), `${command} listed`);
  const helps = await Promise.all(commands.map((command) => run([CLI, command, '--help'], {})));
  for (const [i, command] of commands.entries()) {
    const res = helps[i]!;
    t.equal(res.code, 0, `${command} --help`);
    t.match(res.stdout, new RegExp(`^Usage: gatehouse ${command} `), `${command} --help is its own`);
    t.notMatch(res.stdout, /^Commands:/m, `${command} --help is not the global help`);
  }
  t.match((await run([CLI, 'clients', '--help'], {})).stdout, /clients create --name N/);
  t.equal((await run([CLI, 'help', 'keys'], {})).stdout, (await run([CLI, 'keys', '-h'], {})).stdout);
  const unknown = await run([CLI, 'help', 'frobnicate'], {});
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command: frobnicate/);
});

t.test("a usage mistake in one command prints that command's help", async (t) => {
  const res = await run([CLI, 'keys', 'frobnicate'], { ...BASE_ENV, DATA_DIR: join(t.testdir(), 'pglite') });
  t.equal(res.code, 2);
  t.match(res.stderr, /^gatehouse: unknown keys action: frobnicate\n\nUsage: gatehouse keys /);
});

t.test('keys --json prints snake_case JSON on stdout and warnings as plain text on stderr', async (t) => {
  // Development mode without KEY_ENCRYPTION_SECRET: the key store warns.
  const env = { DATA_DIR: await migratedPgliteDataDir(join(t.testdir(), 'pglite')), LOG_LEVEL: 'info' };
  const res = await run([CLI, 'keys', 'list', '--json'], env);
  t.equal(res.code, 0, res.stderr);
  const keys = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
  t.equal(keys.length, 1);
  t.ok('activated_at' in keys[0]! && !('activatedAt' in keys[0]), 'snake_case');
  t.match(res.stderr, /^gatehouse: warning: KEY_ENCRYPTION_SECRET is empty/m, 'the warning is for a person');
  t.notMatch(res.stderr, /^\{/m, 'no JSON log line');
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
  // Independent processes: started together, checked in order.
  const results = await Promise.all(cases.map(([env]) => run([CLI, 'serve'], env)));
  for (const [i, [env, expected]] of cases.entries()) {
    const res = results[i]!;
    t.equal(res.code, 1, `${Object.keys(env).join(',')} exits 1`);
    t.match(res.stderr, /^gatehouse: Invalid configuration:\n/);
    t.match(res.stderr, expected);
    t.equal(res.stdout, '', 'nothing started');
    noStackTrace(t, res.stderr);
  }
});

t.test('config prints every setting with secrets redacted and their sources', async (t) => {
  const [res, text] = await Promise.all([
    run([CLI, 'config', '--json'], {
      KEY_ENCRYPTION_SECRET: 'super-secret-value-abcdefghijklmnop1234',
      PORT: '4321',
    }),
    run([CLI, 'config'], { PORT: '4321' }),
  ]);
  t.equal(res.code, 0);
  const rows = JSON.parse(res.stdout) as Array<{ env: string; value: unknown; source: string }>;
  const byEnv = Object.fromEntries(rows.map((r) => [r.env, r]));
  t.same(byEnv.PORT, { env: 'PORT', value: 4321, source: 'env' });
  t.same(byEnv.KEY_ENCRYPTION_SECRET, { env: 'KEY_ENCRYPTION_SECRET', value: '[redacted]', source: 'env' });
  t.notMatch(res.stdout, /super-secret-value/);
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
  const rows = JSON.parse(status.stdout) as Array<{ name: string; executed_at: string | null }>;
  t.same(
    rows.map((r) => r.name),
    known,
  );
  t.ok(
    rows.every((r) => r.executed_at),
    'all applied',
  );
});
