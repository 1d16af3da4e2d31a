import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LOCK_FILE } from '../../src/db/data-dir-lock.js';
import { basic } from '../fixtures/clients.js';
import { BASE_ENV } from '../helper.js';
import { migratedPgliteDataDir } from '../kit/database.js';
import { CLI, finished, run, waitForLine } from '../process.js';

/**
 * Issue #10: with `gatehouse serve` running on the embedded database, `gatehouse clients create` printed a
 * client_id the server never saw, and lost it. PGlite is single-process: a second process on the same
 * DATA_DIR must refuse at once, saying why and what to do. (The lock itself: embedded-lock.test.ts.)
 */

const IN_USE =
  /^gatehouse: the embedded database in (\S+) is in use by process (\d+) \(gatehouse serve\); stop it, or use the admin API, or set DATABASE_URL to a Postgres both can share\n$/;

function serve(env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = finished(child, 90_000);
  return { child, done };
}

async function listeningPort(child: ReturnType<typeof serve>['child']): Promise<number> {
  const match = await waitForLine(child, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/);
  return Number(match[1]);
}

t.test('a second process on a DATA_DIR that serve holds refuses at once; after serve stops it works', async (t) => {
  const dataDir = await migratedPgliteDataDir(join(t.testdir(), 'pglite'));
  const env = { ...BASE_ENV, LOG_LEVEL: 'info', DATA_DIR: dataDir, PORT: '0', RESOURCES: 'https://api.example.com' };
  const first = serve(env);
  t.teardown(() => void (first.child.exitCode === null && first.child.kill('SIGKILL')));
  await listeningPort(first.child);
  const lock = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8')) as Record<string, unknown>;
  t.match(lock, { pid: first.child.pid, host: hostname(), owner: 'gatehouse serve' }, 'the lock names its holder');

  const create = ['clients', 'create', '--name', 'Beside the server', '--grant-type', 'client_credentials', '--json'];
  // Independent refusals, run together: the CLI beside the server, and a second server.
  const [refused, second] = await Promise.all([run([CLI, ...create], env), run([CLI, 'serve'], env)]);
  t.equal(refused.code, 1, 'the CLI exits non-zero');
  t.equal(refused.stdout, '', 'no client_id is printed');
  const match = IN_USE.exec(refused.stderr);
  t.ok(match, `one line saying why and what to do: ${refused.stderr}`);
  t.equal(match?.[1], dataDir);
  t.equal(Number(match?.[2]), first.child.pid, 'it names the server process');

  t.equal(second.code, 1, 'a second serve refuses too');
  t.match(second.stderr, IN_USE);

  first.child.kill('SIGTERM');
  t.equal((await first.done).code, 0, 'serve stops cleanly');
  t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'and releases the lock');

  const created = await run([CLI, ...create], env);
  t.equal(created.code, 0, created.stderr);
  const { client, client_secret: secret } = JSON.parse(created.stdout) as {
    client: { client_id: string };
    client_secret: string;
  };
  t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'the CLI releases the lock when it is done');

  const again = serve(env);
  t.teardown(() => void (again.child.exitCode === null && again.child.kill('SIGKILL')));
  const port = await listeningPort(again.child);
  const res = await fetch(`http://127.0.0.1:${port}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, secret) },
    body: 'grant_type=client_credentials',
  });
  t.equal(res.status, 200, 'the server sees the client the CLI created');
  again.child.kill('SIGTERM');
  t.equal((await again.done).code, 0);
});
