import type { FastifyInstance, InjectOptions } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { sql } from 'kysely';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { insertSession } from '../../src/repositories/session.repository.js';
import { sweepOnce } from '../../src/services/janitor.js';
import { basic } from '../fixtures/clients.js';
import { HANDSHAKE_ENV } from '../fixtures/host.js';
import { FILE_DATABASE_URL, testConfig, testDatabase } from '../helper.js';
import { Browser } from '../kit/browser.js';
import { authorizeAndConsent } from '../kit/flows.js';
import { ISSUER } from '../kit/issuer.js';
import { pkce } from '../kit/pkce.js';

/**
 * Issue #10: two replicas on one database, as behind a load balancer. All state lives in the database
 * (docs/architecture.md), so a browser flow may move between replicas at every hop; a key rotated on one
 * replica reaches the other within KEY_CACHE_TTL_SECONDS; and the janitor sweeps on one replica at a time.
 * On Postgres (TEST_DATABASE_URL) each replica has its own connection pool, as separate processes would;
 * on PGlite, which is single-process, the two apps share the one embedded database.
 */

const ENV = {
  ...HANDSHAKE_ENV,
  SCOPES: '{"read":"Read your data"}',
  RESOURCES: 'https://api.example.com',
  // A key rotation becomes visible within one cache period and signs after the rotation delay, which must
  // exceed JWKS_MAX_AGE_SECONDS + KEY_CACHE_TTL_SECONDS.
  KEY_CACHE_TTL_SECONDS: '1',
  JWKS_MAX_AGE_SECONDS: '1',
  KEY_ROTATION_DELAY_SECONDS: '3',
  JANITOR_INTERVAL_SECONDS: '0',
};
const REDIRECT = 'https://app.example.com/cb';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A replica: its own app (and, on Postgres, its own pool) on the one database. */
async function replica(t: Tap.Test): Promise<FastifyInstance> {
  const config = testConfig(ENV);
  const app = FILE_DATABASE_URL ? await buildApp(config) : await buildApp(config, { database: await testDatabase() });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

async function jwksOf(app: FastifyInstance) {
  return createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
}

async function kidsOf(app: FastifyInstance): Promise<string[]> {
  const set = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{
    keys: Array<{ kid: string }>;
  }>();
  return set.keys.map((k) => k.kid).sort();
}

function form(app: FastifyInstance, url: string, authorization: string, params: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    payload: new URLSearchParams(params).toString(),
  });
}

t.test('a browser flow started on one replica completes on the other', async (t) => {
  const a = await replica(t);
  const b = await replica(t);
  const { client, secret } = await a.clientAdmin.create({
    name: 'Web app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  const authorization = basic(client.client_id, secret!);

  // The load balancer: /authorize reaches A, the sign-in completion and the consent page reach B.
  const served: string[] = [];
  const balancer = {
    inject: (options: InjectOptions) => {
      const path = new URL(typeof options.url === 'string' ? options.url : '/', ISSUER).pathname;
      const target = path === '/authorize' ? a : b;
      served.push(`${target === a ? 'A' : 'B'} ${options.method ?? 'GET'} ${path}`);
      return target.inject(options);
    },
  } as unknown as FastifyInstance;
  const browser = new Browser(balancer);
  const { verifier, challenge } = pkce();
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    scope: 'read',
    state: 'across-replicas',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    prompt: 'consent',
  });
  const back = await authorizeAndConsent(browser, `/authorize?${query}`);
  t.same(
    served,
    ['A GET /authorize', 'B GET /sign-in/complete', 'B GET /consent', 'B POST /consent'],
    'authorize on A; sign-in completion and consent on B',
  );
  t.equal(back.searchParams.get('state'), 'across-replicas');
  const code = back.searchParams.get('code');
  t.ok(code, 'B issued the code');

  const tokens = await form(a, '/token', authorization, {
    grant_type: 'authorization_code',
    code: code!,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
  });
  t.equal(tokens.statusCode, 200, `A redeems the code B issued: ${tokens.body}`);
  const { access_token: accessToken, refresh_token: refreshToken } = tokens.json<{
    access_token: string;
    refresh_token: string;
  }>();
  const { payload } = await jwtVerify(accessToken, await jwksOf(b), { issuer: ISSUER, typ: 'at+jwt' });
  t.equal(payload.sub, 'alice', "A's access token verifies against B's JWKS");
  const refreshed = await form(b, '/token', authorization, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
  });
  t.equal(refreshed.statusCode, 200, "B rotates A's refresh token");
  const replay = await form(a, '/token', authorization, {
    grant_type: 'authorization_code',
    code: code!,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
  });
  t.equal(replay.json().error, 'invalid_grant', 'the code is single-use across replicas');
});

t.test('a key rotated on one replica is published and used by the other within KEY_CACHE_TTL_SECONDS', async (t) => {
  const a = await replica(t);
  const b = await replica(t);
  const { client, secret } = await a.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
  });
  const authorization = basic(client.client_id, secret!);
  const before = a.keys.current().kid;
  t.equal(b.keys.current().kid, before, 'both sign with the same key');

  const next = await a.keys.rotate();
  t.ok((await kidsOf(a)).includes(next.kid), 'A publishes the next key at once');
  // B re-reads the keys every KEY_CACHE_TTL_SECONDS (1 s here); wait a few periods at most.
  let seenAfter: number | undefined;
  const rotatedAt = performance.now();
  while (seenAfter === undefined && performance.now() - rotatedAt < 10_000) {
    if ((await kidsOf(b)).includes(next.kid)) seenAfter = performance.now() - rotatedAt;
    else await sleep(100);
  }
  t.ok(seenAfter !== undefined, 'B publishes it too, before it signs anything');
  t.equal(b.keys.current().kid, before, 'B does not sign with it before KEY_ROTATION_DELAY_SECONDS');

  // After KEY_ROTATION_DELAY_SECONDS the next key signs on both.
  const deadline = performance.now() + 15_000;
  while ((a.keys.current().kid !== next.kid || b.keys.current().kid !== next.kid) && performance.now() < deadline)
    await sleep(100);
  t.equal(a.keys.current().kid, next.kid, 'A signs with the new key');
  t.equal(b.keys.current().kid, next.kid, 'B signs with the new key');
  const fromB = await form(b, '/token', authorization, { grant_type: 'client_credentials' });
  t.equal(fromB.statusCode, 200);
  const token = fromB.json<{ access_token: string }>().access_token;
  const { protectedHeader } = await jwtVerify(token, await jwksOf(a), { issuer: ISSUER, typ: 'at+jwt' });
  t.equal(protectedHeader.kid, next.kid, "B's token, signed with the new key, verifies against A's JWKS");
  const introspected = await form(a, '/introspect', authorization, { token });
  t.equal(introspected.json().active, true, "and A's introspection accepts it");
  t.ok((await kidsOf(b)).includes(before), 'the retired key stays published for the tokens it signed');
  t.comment(`replica B published the rotated key ${seenAfter?.toFixed(0)} ms after A rotated (cache TTL 1 s)`);
});

t.test(
  'the janitor sweeps on one replica at a time: a replica finding another mid-sweep skips its round',
  {
    skip: FILE_DATABASE_URL
      ? false
      : 'PGlite has one session, and advisory locks are re-entrant within a session: needs TEST_DATABASE_URL',
  },
  async (t) => {
    const a = await replica(t);
    const b = await replica(t);
    const schema = a.config.database.schema;
    const options = { retentionSeconds: 0, sessionIdleSeconds: 86400, accessTokenLifetimeSeconds: 3630 };
    const expired = hashSecret(generateToken());
    await insertSession(a.database.db, {
      id_hash: expired,
      sub: 'user-1',
      auth_time: new Date(Date.now() - 7_200_000),
      created_at: new Date(Date.now() - 7_200_000),
      last_seen_at: new Date(Date.now() - 7_200_000),
      expires_at: new Date(Date.now() - 3_600_000),
      revoked_at: null,
    });
    // A third connection holds the expired row, so A's sweep, once it has the janitor's lock, waits on it.
    const holder = await a.database.root.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      await sql`select 1 from ${sql.table(`${schema}.sessions`)} where id_hash = ${expired} for update`.execute(conn);
      const sweepA = sweepOnce(a.database, schema, options);
      // Wait until A's sweep waits on that row: it holds the janitor's advisory lock by then.
      for (let i = 0; i < 200; i++) {
        const waiting = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(b.database.root);
        if (waiting.rows[0]!.n > 0) break;
        await sleep(20);
      }
      const sweepB = await sweepOnce(b.database, schema, options);
      await sql`rollback`.execute(conn);
      return { sweepA: await sweepA, sweepB };
    });
    t.equal(holder.sweepB, null, 'B finds A sweeping and skips its round');
    t.ok(holder.sweepA && holder.sweepA.sessions >= 1, 'A sweeps');
    const after = await sweepOnce(b.database, schema, options);
    t.ok(after !== null, 'once A is done, B can take the next round');
  },
);
