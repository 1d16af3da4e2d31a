import t from 'tap';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { BASE_ENV } from '../helper.js';
import { postgresBin, spawnServer, startThrowawayPostgres } from '../kit/throwaway-postgres.js';
import { postToken, settleChains, startChains, tokenLoad } from '../kit/token-load.js';

/**
 * Issue #10: a stalled Postgres must not hang requests nor cost clients their refresh chains. The test
 * freezes the Postgres it started (SIGSTOP to the postmaster and all its processes: connections stay open
 * and nothing answers) for 8 s under load from a real `gatehouse serve`, whose clients give up on an answer
 * after 1.5 s and retry with the refresh token they still hold, while the server's own bounds are
 * DATABASE_CONNECT_TIMEOUT_MS=1000 and DATABASE_QUERY_TIMEOUT_MS=2000. Requests fail fast with 503 and
 * Retry-After while it is frozen, never 500; the rotations the clients gave up on commit when Postgres
 * thaws, and the clients' retries get working tokens through the grace window (docs/refresh-tokens.md):
 * no chain is lost, the process does not exit, and it recovers without a restart.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FROZEN_MS = 8000;

async function frozenTest(bin: string): Promise<void> {
  const pg = await startThrowawayPostgres(bin);
  t.teardown(() => pg.destroy());
  const env = {
    ...BASE_ENV,
    LOG_LEVEL: 'warn',
    DATABASE_URL: pg.url,
    DATABASE_POOL_MAX: '4',
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
    DATABASE_QUERY_TIMEOUT_MS: '2000',
    DATABASE_STATEMENT_TIMEOUT_MS: '1500',
    SCOPES: '{"read":"Read your data"}',
    RESOURCES: 'https://api.example.com',
  };
  // The chains are started through an in-process app (migrating the database), closed before the freeze.
  const setup = await buildApp(loadConfig(env).config);
  await setup.ready();
  const { authorization, chains } = await startChains(setup, 6);
  await setup.close();

  const server = await spawnServer(env);
  t.teardown(() => server.stop());
  const url = server.url;
  const probe = () =>
    postToken(url, authorization, { grant_type: 'refresh_token', refresh_token: 'no-such-refresh-token' });

  await t.test(`Postgres frozen for ${FROZEN_MS / 1000} s under load, then thawed`, async (t) => {
    const traffic = tokenLoad({ url, authorization, chains, clientTimeoutMs: 1500 });
    await sleep(500);
    const frozenAt = performance.now();
    pg.freeze();
    let thawed = false;
    const thawing = sleep(FROZEN_MS).then(() => {
      pg.thaw();
      thawed = true;
    });
    try {
      await sleep(300);
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
        body: 'grant_type=refresh_token&refresh_token=no-such-refresh-token',
      });
      t.notOk(thawed, 'a request reaching the frozen database is answered while it is still frozen: no hang');
      t.equal(res.status, 503, 'with 503');
      t.equal(((await res.json()) as { error?: string }).error, 'temporarily_unavailable');
      t.ok(res.headers.get('retry-after'), 'and Retry-After');
      const ready = await fetch(`${url}/readyz`);
      t.equal(ready.status, 503, '/readyz is not ready');
      t.notOk(thawed, 'nor does /readyz wait for it');
      t.equal((await fetch(`${url}/healthz`)).status, 200, '/healthz stays up');
      t.equal((await fetch(`${url}/.well-known/jwks.json`)).status, 200, 'JWKS is served from the cache');
      const cc = await postToken(url, authorization, { grant_type: 'client_credentials' });
      t.equal(cc.status, 200, 'client_credentials works from the caches');
    } finally {
      await thawing;
    }
    const thawedAt = performance.now();
    let recovered: number | undefined;
    while (recovered === undefined && performance.now() - thawedAt < 15_000) {
      const res = await probe().catch(() => undefined);
      if (res?.status === 400 && res.body.error === 'invalid_grant') recovered = performance.now();
      else await sleep(50);
    }
    await sleep(1000);
    await traffic.stop();
    t.ok(recovered !== undefined, 'the database is reached again without a restart');
    t.equal((await fetch(`${url}/readyz`)).status, 200, '/readyz is ready again');

    const kinds = new Set(traffic.answers.map((a) => a.answer));
    t.same(
      [...kinds].filter((a) => !['200', '503 temporarily_unavailable', 'gave up'].includes(a)),
      [],
      'every answer is a token or 503 temporarily_unavailable, or the client gave up first (never 500)',
    );
    const during = traffic.answers.filter((a) => a.at >= frozenAt && a.at < thawedAt);
    const gaveUp = chains.reduce((n, c) => n + c.gaveUp, 0);
    t.ok(gaveUp > 0, 'clients gave up on refreshes in flight and retried them');
    const lost = await settleChains(url, authorization, chains);
    t.same(
      lost.map((c) => c.lost),
      [],
      'no refresh chain lost: each retry got a working token',
    );
    t.equal(server.exited(), null, 'the server process is still running');
    const answered = during.filter((a) => a.answer !== 'gave up');
    t.comment(
      `figures (frozen): Postgres frozen ${FROZEN_MS / 1000} s; ${during.length} requests sent meanwhile: ` +
        `${answered.filter((a) => a.answer === '200').length} × 200 from caches, ` +
        `${answered.filter((a) => a.answer.startsWith('503')).length} × 503, ${during.length - answered.length} given up ` +
        `by the client after 1.5 s; longest answer ${Math.max(0, ...answered.map((a) => a.ms)).toFixed(0)} ms; ` +
        `recovered ${((recovered ?? thawedAt) - thawedAt).toFixed(0)} ms after the thaw; ${gaveUp} refreshes ` +
        `retried, refresh chains lost ${lost.length} of ${chains.length}; process exits ` +
        `${server.exited() === null ? 0 : 1}`,
    );
  });
}

const bin = postgresBin();
if (!bin) {
  if (process.env.CI) t.fail('the Postgres binaries (/usr/lib/postgresql/*/bin) are required in CI');
  else t.plan(0, 'skipped: Postgres is not installed (/usr/lib/postgresql/*/bin); the test freezes one it controls');
} else {
  await frozenTest(bin);
}
