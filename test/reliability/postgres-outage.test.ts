import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { DomainError } from '../../src/lib/errors.js';
import { BASE_ENV } from '../helper.js';
import { postgresBin, startThrowawayPostgres, spawnServer } from '../kit/throwaway-postgres.js';
import { postToken, settleChains, startChains, tokenLoad } from '../kit/token-load.js';

/**
 * Issue #10: the process survives Postgres going away under load (`pg_ctl stop -m fast`, what a failover or
 * a minor upgrade does), answers 503 + Retry-After while it is gone, keeps /healthz, JWKS and metadata up,
 * and recovers without a restart. The test runs its own throwaway Postgres (test/kit/throwaway-postgres.ts),
 * independent of TEST_DATABASE_URL, because it stops and starts the server: five restarts, four short and
 * one of 10 s, against a real `gatehouse serve` process (so an exit would be an exit) carrying
 * client_credentials and refresh-token chains, plus an in-process app whose transaction spans a stop.
 * The figures are printed as a `# figures` line.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long each of the five outages lasts: the 10 s one last. */
const OUTAGES_MS = [2000, 2000, 2000, 2000, 10_000];

async function outageTests(bin: string): Promise<void> {
  const pg = await startThrowawayPostgres(bin);
  t.teardown(() => pg.destroy());

  // The test process's own app must not meet an uncaught error either: in production close-with-grace would
  // shut it down.
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  t.teardown(() => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  const env = {
    ...BASE_ENV,
    LOG_LEVEL: 'warn',
    DATABASE_URL: pg.url,
    DATABASE_POOL_MAX: '4',
    SCOPES: '{"read":"Read your data"}',
    RESOURCES: 'https://api.example.com',
  };
  const app: FastifyInstance = await buildApp(loadConfig(env).config);
  t.teardown(() => app.close());
  await app.ready();
  const { authorization, chains } = await startChains(app, 6);

  const server = await spawnServer(env);
  t.teardown(() => server.stop());
  const url = server.url;
  const get = (path: string) => fetch(`${url}${path}`, { redirect: 'manual' });
  // A refresh grant must read the database, so a refresh with an unknown token shows whether it is
  // reachable: invalid_grant when up, 503 when down.
  const probe = () =>
    postToken(url, authorization, { grant_type: 'refresh_token', refresh_token: 'no-such-refresh-token' });
  const databaseUp = async () => {
    try {
      const res = await probe();
      return res.status === 400 && res.body.error === 'invalid_grant';
    } catch {
      return false;
    }
  };

  t.equal((await postToken(url, authorization, { grant_type: 'client_credentials' })).status, 200, 'a token first');

  const rounds: Array<{ down: number; answers: number; errors: number; longest: number; recovery: number }> = [];
  for (const [index, downMs] of OUTAGES_MS.entries()) {
    const round = index + 1;
    await t.test(`outage ${round}: Postgres stopped for ${downMs / 1000} s under load, then started`, async (t) => {
      const traffic = tokenLoad({ url, authorization, chains, clientTimeoutMs: 5000 });
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
      await pg.stop();
      resume();
      t.equal(await held, 'unavailable', 'a transaction cut short reports DomainError(unavailable)');

      const cc = await postToken(url, authorization, { grant_type: 'client_credentials' });
      t.equal(cc.status, 200, 'client_credentials still works from the caches');
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
        body: 'grant_type=refresh_token&refresh_token=no-such-refresh-token',
      });
      t.equal(res.status, 503, '/token answers 503 while Postgres is down');
      t.equal(((await res.json()) as { error?: string }).error, 'temporarily_unavailable');
      t.ok(res.headers.get('retry-after'), 'with Retry-After');
      const page = await get(
        '/authorize?response_type=code&client_id=unknown-client&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb',
      );
      t.equal(page.status, 503, 'a browser page answers 503 while Postgres is down');
      t.match(page.headers.get('content-type'), /text\/html/, 'as the error page');
      t.ok(page.headers.get('retry-after'), 'with Retry-After');
      t.equal((await get('/healthz')).status, 200, '/healthz stays up');
      t.equal((await get('/readyz')).status, 503, '/readyz is not ready');
      t.equal((await get('/.well-known/jwks.json')).status, 200, 'JWKS is served from the cache');
      t.equal((await get('/.well-known/oauth-authorization-server')).status, 200, 'metadata is served');

      // Stay down for the round's time with requests still arriving.
      await sleep(Math.max(0, downMs - (performance.now() - stoppedAt)));
      const startedAt = performance.now();
      await pg.start();
      const upAt = performance.now();
      let recovered: number | undefined;
      while (recovered === undefined && performance.now() - upAt < 15_000) {
        if (await databaseUp()) recovered = performance.now();
        else await sleep(50);
      }
      await sleep(300);
      await traffic.stop();
      t.ok(recovered !== undefined, '/token reaches the database again without a restart');
      t.equal((await get('/readyz')).status, 200, '/readyz is ready again');

      const during = traffic.answers.filter((a) => a.at >= stoppedAt && a.at < startedAt);
      const kinds = new Set(traffic.answers.map((a) => a.answer));
      t.same(
        [...kinds].filter((a) => !['200', '503 temporarily_unavailable'].includes(a)),
        [],
        'every answer under load is a token or 503 temporarily_unavailable (never 500, no timeout, no refusal)',
      );
      t.ok(during.length > 0, 'requests were answered during the outage');
      const longest = Math.max(...during.map((a) => a.ms));
      t.ok(longest < 5000, `no answer during the outage took more than 5 s (longest ${longest.toFixed(0)} ms)`);
      t.same(
        chains.filter((c) => c.lost !== null).map((c) => c.lost),
        [],
        'no refresh chain lost',
      );
      t.equal(server.exited(), null, 'the server process is still running');
      t.same(uncaught, [], 'no uncaught error in the test process: its app survives too');
      rounds.push({
        down: downMs,
        answers: during.length,
        errors: during.filter((a) => a.answer !== '200').length,
        longest,
        recovery: (recovered ?? upAt) - upAt,
      });
      t.comment(
        `outage ${round}: ${during.length} answers during ${downMs / 1000} s down ` +
          `(${during.filter((a) => a.answer.startsWith('503')).length} × 503, ` +
          `${during.filter((a) => a.answer === '200').length} × 200 from caches), longest ${longest.toFixed(0)} ms, ` +
          `recovered ${((recovered ?? upAt) - upAt).toFixed(0)} ms after Postgres accepted connections ` +
          `(pg_ctl start took ${(upAt - startedAt).toFixed(0)} ms)`,
      );
    });
  }

  // In a subtest: the root test ends once its last subtest has and nothing else is queued, which would
  // run the teardown (stopping the server) under a top-level await.
  let figures = '';
  await t.test('after the five outages', async (t) => {
    const lost = await settleChains(url, authorization, chains);
    t.same(
      lost.map((c) => c.lost),
      [],
      'every refresh chain still refreshes',
    );
    t.equal(server.exited(), null, 'no process exit across the five restarts');
    t.same(uncaught, [], 'no uncaught error across the five restarts');
    const long = rounds.at(-1);
    const short = rounds.slice(0, -1);
    if (long && short.length > 0)
      figures =
        `figures: ${rounds.length} Postgres restarts under load (${short.length} × ${short[0]!.down / 1000} s, ` +
        `1 × ${long.down / 1000} s down); 10 s outage: ${long.answers} answers, ${long.errors} errors ` +
        `(all 503 + Retry-After, no 500), longest answer ${long.longest.toFixed(0)} ms, recovered ` +
        `${long.recovery.toFixed(0)} ms after Postgres accepted connections; short outages: longest answer ` +
        `${Math.max(...short.map((r) => r.longest)).toFixed(0)} ms, slowest recovery ` +
        `${Math.max(...short.map((r) => r.recovery)).toFixed(0)} ms; refresh chains lost ${lost.length} of ` +
        `${chains.length}; process exits ${server.exited() === null ? 0 : 1}`;
  });
  // At the top level, synchronously after the last subtest, so it is one `# figures` line of the file's TAP.
  t.comment(figures);
}

const bin = postgresBin();
if (!bin) {
  if (process.env.CI) t.fail('the Postgres binaries (/usr/lib/postgresql/*/bin) are required in CI');
  else
    t.plan(0, 'skipped: Postgres is not installed (/usr/lib/postgresql/*/bin); the outage test needs one it controls');
} else {
  await outageTests(bin);
}
