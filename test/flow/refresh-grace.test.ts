import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { openSuccessor, sealSuccessor } from '../../src/oauth/tokens/refresh-successor.js';
import { rotateRefreshToken } from '../../src/repositories/refresh-token.repository.js';
import { basic } from '../fixtures/clients.js';
import { testConfig, testDatabase } from '../helper.js';
import { startRefreshChain } from '../kit/chains.js';

/**
 * Issue #10: a refresh rotation whose answer was lost is not a theft. The same client retrying the token
 * it just rotated, within REFRESH_TOKEN_GRACE_SECONDS and before it used the successor, gets the same
 * successor again with a new access token; anything else is reuse and revokes the chain (RFC 9700
 * §4.14.2). docs/refresh-tokens.md is the design and its race analysis.
 */

const ENV = {
  ISSUER: 'https://auth.example.com',
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: 'https://api.example.com',
  REFRESH_TOKEN_GRACE_SECONDS: '30',
};
const REDIRECT = 'https://app.example.com/cb';
const ALREADY_USED = {
  error: 'invalid_grant',
  error_description: 'the refresh token was already used; its chain is revoked',
};

interface Harness {
  app: FastifyInstance;
  /** Moves the app's clock (the grace window is measured on it). */
  advance: (seconds: number) => void;
}

async function harness(t: Tap.Test, overrides: Record<string, string> = {}): Promise<Harness> {
  let offsetMs = 0;
  const app = await buildApp(testConfig({ ...ENV, ...overrides }), {
    database: await testDatabase(),
    clock: () => new Date(Date.now() + offsetMs),
  });
  t.teardown(() => app.close());
  await app.ready();
  return { app, advance: (seconds) => (offsetMs += seconds * 1000) };
}

interface TestClient {
  id: string;
  secret: string;
}

async function webClient(app: FastifyInstance): Promise<TestClient> {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Web app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  return { id: client.client_id, secret: secret! };
}

function token(app: FastifyInstance, client: TestClient, params: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.id, client.secret) },
    payload: new URLSearchParams(params).toString(),
  });
}

const refresh = (app: FastifyInstance, client: TestClient, refreshToken: string, extra: Record<string, string> = {}) =>
  token(app, client, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra });

/** A chain started for `client` (test/kit/chains.ts); its first refresh token. */
function startChain(app: FastifyInstance, client: TestClient, sub = 'user-42'): Promise<string> {
  return startRefreshChain(app, {
    clientId: client.id,
    authorization: basic(client.id, client.secret),
    redirectUri: REDIRECT,
    scopes: ['read', 'write'],
    resources: ['https://api.example.com'],
    sub,
  });
}

/** The chain's generations: how many, and how many a refresh would still accept. */
async function chainOf(app: FastifyInstance, client: TestClient) {
  const rows = await app.database.db
    .selectFrom('refresh_tokens')
    .select(['generation', 'rotated_at', 'revoked_at'])
    .where('client_id', '=', client.id)
    .orderBy('generation')
    .execute();
  return {
    generations: rows.map((r) => r.generation),
    live: rows.filter((r) => r.rotated_at === null && r.revoked_at === null).length,
    revoked: rows.some((r) => r.revoked_at !== null),
  };
}

async function accessTokenWorks(app: FastifyInstance, accessToken: string): Promise<boolean> {
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  const { payload } = await jwtVerify(accessToken, createLocalJWKSet(jwks), {
    issuer: 'https://auth.example.com',
    typ: 'at+jwt',
  });
  return payload.sub === 'user-42';
}

t.test('a retry within the window gets the same successor and a new access token; the chain goes on', async (t) => {
  const { app, advance } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  const lost = await refresh(app, client, first);
  t.equal(lost.statusCode, 200, 'the rotation whose answer the client never read');
  advance(20);
  const retry = await refresh(app, client, first);
  t.equal(retry.statusCode, 200, retry.body);
  t.equal(retry.json().refresh_token, lost.json().refresh_token, 'the successor the lost answer carried');
  t.not(retry.json().access_token, lost.json().access_token, 'with a new access token');
  t.ok(await accessTokenWorks(app, retry.json().access_token), 'that verifies against the JWKS');
  t.equal(retry.json().scope, 'read write');
  t.equal(retry.headers['cache-control'], 'no-store');
  t.same(await chainOf(app, client), { generations: [0, 1], live: 1, revoked: false }, 'nothing forked');

  const next = await refresh(app, client, retry.json().refresh_token);
  t.equal(next.statusCode, 200, 'the chain continues from the successor');
  t.same(await chainOf(app, client), { generations: [0, 1, 2], live: 1, revoked: false });

  const narrowed = await refresh(app, client, retry.json().refresh_token, { scope: 'read' });
  t.equal(narrowed.statusCode, 200, 'a retry may narrow the scope, like any refresh');
  t.equal(narrowed.json().scope, 'read');
  t.equal(narrowed.json().refresh_token, next.json().refresh_token);
  const widened = await refresh(app, client, retry.json().refresh_token, { scope: 'read write' });
  t.equal(widened.statusCode, 200, 'and ask for the whole grant again');
});

t.test('once the successor has been used, the rotated token is reuse: the chain is revoked', async (t) => {
  const { app } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  const second = (await refresh(app, client, first)).json().refresh_token;
  const third = await refresh(app, client, second);
  t.equal(third.statusCode, 200);
  t.same((await refresh(app, client, first)).json(), ALREADY_USED, 'an older generation, within the window');
  t.equal((await refresh(app, client, third.json().refresh_token)).json().error, 'invalid_grant', 'the newest too');
  t.same(await chainOf(app, client), { generations: [0, 1, 2], live: 0, revoked: true });
});

t.test('a retry that arrived before the successor was used is old, not reuse: refused, chain kept', async (t) => {
  const { app, advance } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  const second = (await refresh(app, client, first)).json().refresh_token;
  const third = (await refresh(app, client, second)).json().refresh_token;
  // A retry of `first` its client gave up on, held up (say, in a frozen database) since before `second`
  // was used, and only now reaching the chain: its time is its arrival, 5 s ago.
  advance(-5);
  const late = await refresh(app, client, first);
  advance(5);
  t.same(late.json(), {
    error: 'invalid_grant',
    error_description: 'the refresh token was already rotated; use the newest one',
  });
  t.same(await chainOf(app, client), { generations: [0, 1, 2], live: 1, revoked: false }, 'nothing revoked');
  t.equal((await refresh(app, client, third)).statusCode, 200, 'the client goes on with what it holds');
  t.same((await refresh(app, client, first)).json(), ALREADY_USED, 'arriving now, the same request is reuse');
});

t.test('a retry after the window is reuse: the chain is revoked', async (t) => {
  const { app, advance } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  const second = (await refresh(app, client, first)).json().refresh_token;
  advance(31);
  t.same((await refresh(app, client, first)).json(), ALREADY_USED);
  t.equal((await refresh(app, client, second)).json().error, 'invalid_grant', 'the successor is revoked with it');
  t.equal((await chainOf(app, client)).live, 0);
});

t.test('the rotated token presented by another client is reuse: the chain is revoked', async (t) => {
  const { app } = await harness(t);
  const owner = await webClient(app);
  const thief = await webClient(app);
  const first = await startChain(app, owner);
  const second = (await refresh(app, owner, first)).json().refresh_token;
  const stolen = await refresh(app, thief, first);
  t.equal(stolen.json().error, 'invalid_grant', 'another client gets nothing');
  t.equal((await refresh(app, owner, second)).json().error, 'invalid_grant', "and the owner's chain is revoked");
  t.equal((await chainOf(app, owner)).live, 0);
});

t.test('REFRESH_TOKEN_GRACE_SECONDS=0 turns the window off: an immediate retry is reuse', async (t) => {
  const { app } = await harness(t, { REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const client = await webClient(app);
  const first = await startChain(app, client);
  const second = (await refresh(app, client, first)).json().refresh_token;
  t.same((await refresh(app, client, first)).json(), ALREADY_USED);
  t.equal((await refresh(app, client, second)).json().error, 'invalid_grant');
});

t.test('concurrent retries and a concurrent use of the successor never leave two live branches', async (t) => {
  const { app } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  // The original request and 9 retries at once: one rotates, the others are answered with its successor.
  const burst = await Promise.all(Array.from({ length: 10 }, () => refresh(app, client, first)));
  t.same(
    burst.map((r) => r.statusCode),
    Array.from({ length: 10 }, () => 200),
  );
  const successors = new Set(burst.map((r) => r.json().refresh_token));
  t.equal(successors.size, 1, 'one successor, whoever won');
  t.same(await chainOf(app, client), { generations: [0, 1], live: 1, revoked: false });

  // Retries of the rotated token racing the client's own use of the successor: whatever the order, the
  // chain is one line (unique generations) with at most one live member, and what the client keeps works.
  const [successor] = successors as Set<string>;
  const mixed = await Promise.all([
    refresh(app, client, successor!),
    ...Array.from({ length: 5 }, () => refresh(app, client, first)),
  ]);
  const chain = await chainOf(app, client);
  t.same(chain.generations, [0, 1, 2], 'never two generations of one number: no fork');
  t.ok(chain.live <= 1, 'at most one live token');
  t.equal(mixed[0].statusCode, 200, 'the use of the successor succeeds');
  if (!chain.revoked) {
    t.equal(chain.live, 1);
    t.equal((await refresh(app, client, mixed[0].json().refresh_token)).statusCode, 200, 'and the chain goes on');
  } else {
    // A retry that ran after the successor was used is reuse: the chain is revoked, never forked.
    t.ok(
      mixed.slice(1).some((r) => r.json().error_description === ALREADY_USED.error_description),
      'revoked only by a retry that came after the successor was used',
    );
  }
});

t.test('a rotation of the same token committing late changes nothing the client holds', async (t) => {
  const { app } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  const answered = await refresh(app, client, first);
  // The statement of an abandoned request (its client gave up) reaching the database after the rotation
  // committed: it finds the token rotated and changes nothing; its own answer would be the same successor.
  const late = generateToken();
  const row = await rotateRefreshToken(app.database.db, {
    tokenHash: hashSecret(first),
    clientId: client.id,
    newHash: hashSecret(late),
    scopes: [],
    resources: [],
    sealedSuccessor: sealSuccessor(first, late),
    jkt: null,
    now: new Date(),
  });
  t.equal(row, undefined, 'the late statement rotates nothing');
  const retry = await refresh(app, client, first);
  t.equal(retry.json().refresh_token, answered.json().refresh_token, 'a retry still gets the one successor');
  t.equal((await refresh(app, client, answered.json().refresh_token)).statusCode, 200);
});

t.test('the sealed successor opens only with the rotated token value, and not with the stored hash', async (t) => {
  const presented = generateToken();
  const successor = generateToken();
  const sealed = sealSuccessor(presented, successor);
  t.equal(openSuccessor(presented, sealed), successor);
  t.not(sealed, successor, 'the seal is not the token');
  t.not(openSuccessor(generateToken(), sealed), successor, 'another token value opens something else');
  t.not(openSuccessor(hashSecret(presented), sealed), successor, 'and so does the hash the database stores');
  t.equal(openSuccessor(presented, 'short'), undefined, 'a seal of the wrong length opens nothing');
  t.throws(() => sealSuccessor(presented, 'not-a-generated-token'));
});

t.test('the database row keeps the successor only sealed', async (t) => {
  const { app } = await harness(t);
  const client = await webClient(app);
  const first = await startChain(app, client);
  const second = (await refresh(app, client, first)).json().refresh_token as string;
  const stored = await app.database.db
    .selectFrom('refresh_tokens')
    .selectAll()
    .where('client_id', '=', client.id)
    .orderBy('generation')
    .execute();
  t.equal(stored.length, 2);
  t.type(stored[0]!.successor_sealed, 'string', 'the rotated generation keeps its successor sealed');
  t.notOk(JSON.stringify(stored).includes(second), 'the successor value is nowhere in the table');
  t.equal(stored[1]!.successor_sealed, null, 'the live generation has none yet');

  // An altered seal opens to a value that is not the chain's next generation: no retry, and the request is
  // the reuse it then is.
  const altered = Buffer.from(stored[0]!.successor_sealed!, 'base64url');
  altered[0] = altered[0]! ^ 1;
  await app.database.db
    .updateTable('refresh_tokens')
    .set({ successor_sealed: altered.toString('base64url') })
    .where('token_hash', '=', stored[0]!.token_hash)
    .execute();
  t.same((await refresh(app, client, first)).json(), ALREADY_USED, 'an altered seal yields no token');
});
