import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { DomainError } from '../../src/lib/errors.js';
import { BASE_ENV } from '../helper.js';
import { basic } from '../fixtures/clients.js';
import { freePort } from '../fixtures/listen.js';

/**
 * Issue #10: the process survives Postgres going away under load (`pg_ctl stop -m fast`, what a failover or
 * a minor upgrade does), answers 503 + Retry-After while it is gone, keeps /healthz, JWKS and metadata up,
 * and recovers without a restart. The test runs its own throwaway Postgres (as scripts/pg-throwaway.sh
 * does), independent of TEST_DATABASE_URL, because it stops and starts the server.
 */

const run = promisify(execFile);

function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(a) - Number(b));
  const last = versions.at(-1);
  return last === undefined ? undefined : join(root, last, 'bin');
}

/** initdb refuses to run as root, so the server runs as `postgres` in a directory it owns. */
const asRoot = process.getuid?.() === 0;
async function asPostgres(command: string, args: string[]): Promise<void> {
  if (asRoot) await run('runuser', ['-u', 'postgres', '--', command, ...args]);
  else await run(command, args);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function outageTests(bin: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-pg-outage-'));
  const data = join(dir, 'data');
  const port = await freePort();
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off`;
  const start = () =>
    asPostgres(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      '-o',
      options,
      'start',
    ]);
  const stop = () => asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
  await start();
  t.teardown(async () => {
    await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  // The process must not meet an uncaught error: in production close-with-grace would shut it down.
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  t.teardown(() => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  const config = loadConfig({
    ...BASE_ENV,
    DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
    DATABASE_POOL_MAX: '4',
    SCOPES: '{"read":"Read your data"}',
    RESOURCES: 'https://api.example.com',
  }).config;
  const app: FastifyInstance = await buildApp(config);
  t.teardown(() => app.close());
  await app.ready();

  const { client, secret } = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    redirect_uris: ['https://app.example.com/cb'],
  });
  const authorization = basic(client.client_id, secret!);
  const token = () =>
    app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      payload: 'grant_type=client_credentials',
    });
  // client_credentials is served from caches (client, signing key) and keeps working while Postgres is down;
  // a refresh grant must read the database, so it shows the outage: invalid_grant when up, 503 when down.
  const refresh = () =>
    app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      payload: 'grant_type=refresh_token&refresh_token=no-such-refresh-token',
    });
  const databaseUp = (res: { statusCode: number; json(): { error?: string } }) =>
    res.statusCode === 400 && res.json().error === 'invalid_grant';
  const get = (url: string) => app.inject({ method: 'GET', url });

  t.equal((await token()).statusCode, 200, 'a token before any outage');

  /** Requests in flight all along: a few workers calling /token back to back, with each answer's status and time. */
  function load(workers = 4) {
    let running = true;
    const answers: Array<{ answer: string; ms: number; at: number }> = [];
    const loops = Array.from({ length: workers }, async (_, i) => {
      while (running) {
        const began = performance.now();
        const res = await (i % 2 === 0 ? token() : refresh());
        const error = res.statusCode === 200 ? '' : ` ${res.json<{ error?: string }>().error}`;
        answers.push({ answer: `${res.statusCode}${error}`, ms: performance.now() - began, at: began });
        if (res.statusCode === 503) await sleep(20);
      }
    });
    return {
      answers,
      stop: async () => {
        running = false;
        await Promise.all(loops);
      },
    };
  }

  const figures: string[] = [];
  for (let round = 1; round <= 3; round++) {
    await t.test(`outage ${round}: Postgres stopped under load, then started again`, async (t) => {
      const traffic = load();
      await sleep(300);
      // A client checked out between the statements of a transaction when the server goes away: its
      // connection's 'error' must not become an uncaught error, and the next statement reports the outage.
      let resume!: () => void;
      const stopped = new Promise<void>((resolve) => (resume = resolve));
      const held = app.database.root
        .transaction()
        .execute(async (trx) => {
          await sql`select 1`.execute(trx);
          await stopped;
          await sql`select 1`.execute(trx);
        })
        .then(
          () => 'committed',
          (err: unknown) => (err instanceof DomainError ? err.code : String(err)),
        );
      await sleep(50);
      const stoppedAt = performance.now();
      await stop();
      resume();
      t.equal(await held, 'unavailable', 'a transaction cut short reports DomainError(unavailable)');

      t.equal((await token()).statusCode, 200, 'client_credentials still works from the caches');
      const res = await refresh();
      t.equal(res.statusCode, 503, '/token answers 503 while Postgres is down');
      t.equal(res.json().error, 'temporarily_unavailable');
      t.ok(res.headers['retry-after'], 'with Retry-After');
      const page = await get(
        '/authorize?response_type=code&client_id=unknown-client&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb',
      );
      t.equal(page.statusCode, 503, 'a browser page answers 503 while Postgres is down');
      t.match(page.headers['content-type'], /text\/html/, 'as the error page');
      t.ok(page.headers['retry-after'], 'with Retry-After');
      t.equal((await get('/healthz')).statusCode, 200, '/healthz stays up');
      t.equal((await get('/readyz')).statusCode, 503, '/readyz is not ready');
      t.equal((await get('/.well-known/jwks.json')).statusCode, 200, 'JWKS is served from the cache');
      t.equal((await get('/.well-known/oauth-authorization-server')).statusCode, 200, 'metadata is served');

      // Stay down for ~6 s with requests still arriving.
      await sleep(Math.max(0, 6000 - (performance.now() - stoppedAt)));
      const startedAt = performance.now();
      await start();
      const upAt = performance.now();
      let recovered: number | undefined;
      while (recovered === undefined && performance.now() - upAt < 15_000) {
        if (databaseUp(await refresh())) recovered = performance.now();
        else await sleep(50);
      }
      await traffic.stop();
      t.ok(recovered !== undefined, '/token reaches the database again without a restart');
      t.equal((await get('/readyz')).statusCode, 200, '/readyz is ready again');

      const during = traffic.answers.filter((a) => a.at >= stoppedAt && a.at < startedAt);
      const answers = new Set(traffic.answers.map((a) => a.answer));
      t.same(
        [...answers].filter((a) => !['200', '400 invalid_grant', '503 temporarily_unavailable'].includes(a)),
        [],
        'every answer under load is a token, invalid_grant or 503 temporarily_unavailable (never 500)',
      );
      t.ok(during.length > 0, 'requests were answered during the outage');
      const longest = Math.max(...during.map((a) => a.ms));
      t.ok(longest < 5000, `no answer during the outage took more than 5 s (longest ${longest.toFixed(0)} ms)`);
      t.same(uncaught, [], 'no uncaught error: the process survives');
      figures.push(
        `outage ${round}: ${during.length} answers during ~6 s down (${during.filter((a) => a.answer.startsWith('503')).length} × 503, ` +
          `${during.filter((a) => a.answer === '200').length} × 200 from caches), longest ${longest.toFixed(0)} ms, ` +
          `recovered ${((recovered ?? upAt) - upAt).toFixed(0)} ms after Postgres accepted connections ` +
          `(pg_ctl start took ${(upAt - startedAt).toFixed(0)} ms)`,
      );
    });
  }
  t.comment(figures.join('\n'));
  t.same(uncaught, [], 'no uncaught error across 3 outages');
}

const bin = postgresBin();
if (!bin) {
  if (process.env.CI) t.fail('the Postgres binaries (/usr/lib/postgresql/*/bin) are required in CI');
  else
    t.plan(0, 'skipped: Postgres is not installed (/usr/lib/postgresql/*/bin); the outage test needs one it controls');
} else {
  await outageTests(bin);
}
