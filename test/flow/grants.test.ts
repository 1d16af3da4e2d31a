import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { createAuthorizationCode } from '../../src/repositories/authorization-code.repository.js';
import { basic } from '../fixtures/clients.js';
import { buildTestApp } from '../helper.js';
import { pkce } from '../kit/pkce.js';

const ENV = {
  ISSUER: 'https://auth.example.com',
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: 'https://api.example.com, https://mcp.example.com/mcp',
};
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const REDIRECT = 'https://app.example.com/cb';

interface TestClient {
  id: string;
  secret: string | null;
}

async function webClient(app: FastifyInstance, overrides: Record<string, unknown> = {}): Promise<TestClient> {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Web app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    ...overrides,
  });
  return { id: client.client_id, secret };
}

/** Mints a code as the flow would, directly in the database. */
async function mintCode(
  app: FastifyInstance,
  client: TestClient,
  challenge: string,
  overrides: Record<string, unknown> = {},
) {
  const code = generateToken();
  await createAuthorizationCode(app.database.db, {
    code_hash: hashSecret(code),
    client_id: client.id,
    redirect_uri: REDIRECT,
    redirect_uri_given: true,
    code_challenge: challenge,
    scopes: ['read', 'write'],
    resources: ['https://api.example.com', 'https://mcp.example.com/mcp'],
    sub: 'user-42',
    auth_time: new Date(Date.now() - 60_000),
    expires_at: new Date(Date.now() + 60_000),
    consumed_at: null,
    family_id: null,
    ...overrides,
  });
  return code;
}

function post(app: FastifyInstance, url: string, client: TestClient, params: Record<string, string>) {
  const headers: Record<string, string> = { ...FORM };
  const body = new URLSearchParams(params);
  if (client.secret) headers.authorization = basic(client.id, client.secret);
  else body.set('client_id', client.id);
  return app.inject({ method: 'POST', url, headers, payload: body.toString() });
}

async function redeem(
  app: FastifyInstance,
  client: TestClient,
  code: string,
  verifier: string,
  extra: Record<string, string> = {},
) {
  return post(app, '/token', client, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
    ...extra,
  });
}

async function refresh(app: FastifyInstance, client: TestClient, token: string, extra: Record<string, string> = {}) {
  return post(app, '/token', client, { grant_type: 'refresh_token', refresh_token: token, ...extra });
}

async function claims(app: FastifyInstance, jwt: string) {
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  return (await jwtVerify(jwt, createLocalJWKSet(jwks), { issuer: 'https://auth.example.com', typ: 'at+jwt' })).payload;
}

async function liveTokens(app: FastifyInstance, sub: string, clientId: string): Promise<number> {
  const rows = await app.database.db
    .selectFrom('refresh_tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('sub', '=', sub)
    .where('client_id', '=', clientId)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(rows.n);
}

t.test('a code redeems once for an access token bound to the user and a refresh token', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const code = await mintCode(app, client, challenge);
  const res = await redeem(app, client, code, verifier);
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  const body = res.json();
  t.match(body, { token_type: 'Bearer', expires_in: 3600, scope: 'read write', refresh_token: /^[A-Za-z0-9_-]{43}$/ });
  const c = await claims(app, body.access_token);
  t.equal(c.sub, 'user-42');
  t.equal(c.client_id, client.id);
  t.same(
    c.aud,
    ['https://api.example.com', 'https://mcp.example.com/mcp'],
    'every granted resource when none is named',
  );
  t.equal(c.scope, 'read write');
  t.type(c.auth_time, 'number');
  const stored = await app.database.db
    .selectFrom('refresh_tokens')
    .selectAll()
    .where('client_id', '=', client.id)
    .execute();
  t.equal(stored.length, 1);
  t.not(stored[0]!.token_hash, body.refresh_token, 'only the hash is stored');
  t.equal(stored[0]!.token_hash, hashSecret(body.refresh_token));
});

t.test('resource at the token endpoint picks one granted resource (RFC 8707 §2.2)', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const res = await redeem(app, client, await mintCode(app, client, challenge), verifier, {
    resource: 'https://mcp.example.com/mcp',
  });
  t.equal((await claims(app, res.json().access_token)).aud, 'https://mcp.example.com/mcp');
  const other = pkce();
  const bad = await redeem(
    app,
    client,
    await mintCode(app, client, other.challenge, { resources: ['https://api.example.com'] }),
    other.verifier,
    { resource: 'https://mcp.example.com/mcp' },
  );
  t.equal(bad.json().error, 'invalid_target');
});

t.test('PKCE: no verifier or a wrong one fails, and does not burn the code', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const code = await mintCode(app, client, challenge);
  const missing = await post(app, '/token', client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  t.same(missing.json(), { error: 'invalid_grant', error_description: 'code_verifier is required (PKCE)' });
  const wrong = await redeem(app, client, code, pkce().verifier);
  t.equal(wrong.statusCode, 400);
  t.equal(wrong.json().error, 'invalid_grant');
  const malformed = await redeem(app, client, code, 'short');
  t.equal(malformed.json().error, 'invalid_grant');
  const right = await redeem(app, client, code, verifier);
  t.equal(right.statusCode, 200, 'the legitimate client can still redeem it');
});

t.test('redirect_uri must repeat the authorization request exactly (OAuth 2.1 §4.1.3)', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const a = pkce();
  const code = await mintCode(app, client, a.challenge);
  t.equal(
    (await redeem(app, client, code, a.verifier, { redirect_uri: 'https://app.example.com/cb/' })).json().error,
    'invalid_grant',
  );
  t.equal(
    (await post(app, '/token', client, { grant_type: 'authorization_code', code, code_verifier: a.verifier })).json()
      .error,
    'invalid_grant',
    'absent when it was given',
  );
  t.equal((await redeem(app, client, code, a.verifier)).statusCode, 200);
  const b = pkce();
  const implicit = await mintCode(app, client, b.challenge, { redirect_uri_given: false });
  const res = await post(app, '/token', client, {
    grant_type: 'authorization_code',
    code: implicit,
    code_verifier: b.verifier,
  });
  t.equal(res.statusCode, 200, 'may be omitted when the authorization request omitted it');
});

t.test('a code is bound to its client and expires', async (t) => {
  const app = await buildTestApp(t, ENV);
  const owner = await webClient(app);
  const thief = await webClient(app);
  const a = pkce();
  const code = await mintCode(app, owner, a.challenge);
  t.equal(
    (await redeem(app, thief, code, a.verifier)).json().error,
    'invalid_grant',
    'another client cannot redeem it',
  );
  t.equal((await redeem(app, owner, code, a.verifier)).statusCode, 200);
  const b = pkce();
  const expired = await mintCode(app, owner, b.challenge, { expires_at: new Date(Date.now() - 1000) });
  t.equal((await redeem(app, owner, expired, b.verifier)).json().error, 'invalid_grant');
  t.equal((await redeem(app, owner, 'not-a-code', b.verifier)).json().error, 'invalid_grant');
});

t.test('a second redemption fails and revokes the chain the first one started', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const code = await mintCode(app, client, challenge);
  const first = (await redeem(app, client, code, verifier)).json();
  const second = await redeem(app, client, code, verifier);
  t.same(second.json(), { error: 'invalid_grant', error_description: 'the authorization code has already been used' });
  const afterReplay = await refresh(app, client, first.refresh_token);
  t.equal(afterReplay.json().error, 'invalid_grant', "the first redemption's refresh token is revoked");
});

t.test('20 concurrent redemptions of one code: exactly one succeeds', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const code = await mintCode(app, client, challenge);
  const results = await Promise.all(Array.from({ length: 20 }, () => redeem(app, client, code, verifier)));
  const ok = results.filter((r) => r.statusCode === 200);
  t.equal(ok.length, 1, 'one winner');
  t.ok(
    results.filter((r) => r.statusCode !== 200).every((r) => r.json().error === 'invalid_grant'),
    'the rest are invalid_grant',
  );
  t.ok((await liveTokens(app, 'user-42', client.id)) <= 1, 'at most one live refresh token');
});

t.test('refresh rotates on every use; scope narrows, never widens', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const first = (await redeem(app, client, await mintCode(app, client, challenge), verifier)).json();
  const second = await refresh(app, client, first.refresh_token, { scope: 'read' });
  t.equal(second.statusCode, 200, second.body);
  const body = second.json();
  t.not(body.refresh_token, first.refresh_token, 'a new refresh token');
  t.equal(body.scope, 'read');
  t.equal((await claims(app, body.access_token)).scope, 'read');
  const third = await refresh(app, client, body.refresh_token);
  t.equal(
    third.json().scope,
    'read write',
    'the chain keeps the granted scope; narrowing applied to that access token only',
  );
  const widened = await refresh(app, client, third.json().refresh_token, { scope: 'read admin' });
  t.same(widened.json(), { error: 'invalid_scope', error_description: 'scope not allowed for this client: admin' });
  const rows = await app.database.db
    .selectFrom('refresh_tokens')
    .select(['generation', 'family_id'])
    .where('client_id', '=', client.id)
    .orderBy('generation')
    .execute();
  t.same(
    rows.map((r) => r.generation),
    [0, 1, 2],
    'the refused request rotated nothing',
  );
  t.equal(new Set(rows.map((r) => r.family_id)).size, 1, 'one chain');
});

t.test('presenting a rotated refresh token revokes the whole chain', async (t) => {
  // Without the retry grace window (test/flow/refresh-grace.test.ts has it on).
  const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const first = (await redeem(app, client, await mintCode(app, client, challenge), verifier)).json();
  const second = (await refresh(app, client, first.refresh_token)).json();
  const reuse = await refresh(app, client, first.refresh_token);
  t.same(reuse.json(), {
    error: 'invalid_grant',
    error_description: 'the refresh token was already used; its chain is revoked',
  });
  const legit = await refresh(app, client, second.refresh_token);
  t.equal(legit.json().error, 'invalid_grant', 'the newest token of the chain is revoked too');
  t.equal(await liveTokens(app, 'user-42', client.id), 0);
});

t.test(
  '20 concurrent refreshes of one token: one succeeds; without grace the race is reuse and the chain dies',
  async (t) => {
    const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '0' });
    const client = await webClient(app);
    const { verifier, challenge } = pkce();
    const first = (await redeem(app, client, await mintCode(app, client, challenge), verifier)).json();
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(app, client, first.refresh_token)));
    t.equal(results.filter((r) => r.statusCode === 200).length, 1, 'exactly one rotation');
    const family = await app.database.db
      .selectFrom('refresh_tokens')
      .select(['generation'])
      .where('client_id', '=', client.id)
      .execute();
    t.same(family.map((r) => r.generation).sort(), [0, 1], 'the chain never forks: one successor');
    t.equal(await liveTokens(app, 'user-42', client.id), 0, 'reuse detection revoked the chain');
  },
);

t.test('with a grace window, concurrent retries all get the one successor: one live token remains', async (t) => {
  const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '30' });
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const first = (await redeem(app, client, await mintCode(app, client, challenge), verifier)).json();
  const results = await Promise.all(Array.from({ length: 20 }, () => refresh(app, client, first.refresh_token)));
  const winners = results.filter((r) => r.statusCode === 200);
  // Issue #10: one request rotates, the others are retries of a just-rotated token, answered with the same
  // successor (they used to be refused without revoking, which left a client whose answer was lost signed out).
  t.equal(winners.length, 20, 'every retry within the window is answered');
  t.same(
    [...new Set(winners.map((r) => r.json().refresh_token))],
    [winners[0]!.json().refresh_token],
    'all with one successor: the chain does not fork',
  );
  t.equal(await liveTokens(app, 'user-42', client.id), 1, 'exactly one live token');
  t.equal((await refresh(app, client, winners[0]!.json().refresh_token)).statusCode, 200, 'and it works');
});

t.test('a refresh token is bound to its client and its chain expires absolutely', async (t) => {
  const app = await buildTestApp(t, ENV);
  const owner = await webClient(app);
  const other = await webClient(app);
  const { verifier, challenge } = pkce();
  const first = (await redeem(app, owner, await mintCode(app, owner, challenge), verifier)).json();
  t.equal((await refresh(app, other, first.refresh_token)).json().error, 'invalid_grant');
  t.equal(
    (await refresh(app, owner, first.refresh_token)).statusCode,
    200,
    'the failed attempt by another client did not rotate it',
  );
  await app.database.db
    .updateTable('refresh_tokens')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('client_id', '=', owner.id)
    .execute();
  const latest = await app.database.db
    .selectFrom('refresh_tokens')
    .select('token_hash')
    .where('client_id', '=', owner.id)
    .where('rotated_at', 'is', null)
    .executeTakeFirstOrThrow();
  t.ok(latest);
  const noClientGrant = await webClient(app, { grant_types: ['authorization_code'] });
  const p = pkce();
  const body = (await redeem(app, noClientGrant, await mintCode(app, noClientGrant, p.challenge), p.verifier)).json();
  t.notOk('refresh_token' in body, 'no refresh token without the refresh_token grant type');
});

t.test('public clients (token_endpoint_auth_method none) redeem with client_id only', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app, {
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    redirect_uris: [REDIRECT],
  });
  t.equal(client.secret, null);
  const { verifier, challenge } = pkce();
  const res = await redeem(app, client, await mintCode(app, client, challenge), verifier);
  t.equal(res.statusCode, 200, res.body);
  t.equal((await refresh(app, client, res.json().refresh_token)).statusCode, 200);
});

t.test(
  'revocation (RFC 7009): a refresh token revokes its chain; anything else answers 200 and changes nothing',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const client = await webClient(app);
    const other = await webClient(app);
    const { verifier, challenge } = pkce();
    const tokens = (await redeem(app, client, await mintCode(app, client, challenge), verifier)).json();

    const foreign = await post(app, '/revoke', other, { token: tokens.refresh_token });
    t.equal(foreign.statusCode, 200, "another client's token: 200");
    t.equal(await liveTokens(app, 'user-42', client.id), 1, 'but nothing was revoked');
    t.equal((await post(app, '/revoke', client, { token: 'unknown-token' })).statusCode, 200, 'unknown token: 200');
    t.equal(
      (await post(app, '/revoke', client, { token: tokens.access_token, token_type_hint: 'access_token' })).statusCode,
      200,
      'access token: 200',
    );

    const res = await post(app, '/revoke', client, { token: tokens.refresh_token, token_type_hint: 'access_token' });
    t.equal(res.statusCode, 200);
    t.equal(res.headers['access-control-allow-origin'], '*', 'browser clients may call /revoke (CORS)');
    t.equal(
      await liveTokens(app, 'user-42', client.id),
      0,
      'the hint is only a hint: the refresh token was found and revoked',
    );
    t.equal((await refresh(app, client, tokens.refresh_token)).json().error, 'invalid_grant');

    const unauth = await app.inject({
      method: 'POST',
      url: '/revoke',
      headers: FORM,
      payload: `token=${tokens.refresh_token}`,
    });
    t.equal(unauth.statusCode, 401);
    t.equal(unauth.json().error, 'invalid_client');
    const missing = await post(app, '/revoke', client, {});
    t.same(missing.json(), { error: 'invalid_request', error_description: 'missing parameter: token' });
    const json = await app.inject({
      method: 'POST',
      url: '/revoke',
      headers: { 'content-type': 'application/json', authorization: basic(client.id, client.secret!) },
      payload: { token: 'x' },
    });
    t.equal(json.statusCode, 415);
  },
);

t.test(
  'a refresh refused for its scope or resource leaves the token usable (no rotation, no reuse revocation)',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const client = await webClient(app);
    const { verifier, challenge } = pkce();
    const first = (
      await redeem(
        app,
        client,
        await mintCode(app, client, challenge, { resources: ['https://mcp.example.com/mcp'] }),
        verifier,
      )
    ).json();
    const badScope = await refresh(app, client, first.refresh_token, { scope: 'read admin' });
    t.equal(badScope.json().error, 'invalid_scope');
    const badResource = await refresh(app, client, first.refresh_token, { resource: 'https://mcp.example.com/mcp/' });
    t.same(badResource.json(), {
      error: 'invalid_target',
      error_description: 'resource not allowed for this client: https://mcp.example.com/mcp/',
    });
    const malformed = await refresh(app, client, first.refresh_token, { resource: 'not a uri' });
    t.equal(malformed.json().error, 'invalid_target');
    const retry = await refresh(app, client, first.refresh_token, { resource: 'https://mcp.example.com/mcp' });
    t.equal(retry.statusCode, 200, 'the same token still works after the refusals');
    t.equal((await claims(app, retry.json().access_token)).aud, 'https://mcp.example.com/mcp');
    t.equal(await liveTokens(app, 'user-42', client.id), 1);
  },
);

t.test('a code exchange refused for its resource does not burn the code', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const code = await mintCode(app, client, challenge, { resources: ['https://api.example.com'] });
  const refused = await redeem(app, client, code, verifier, { resource: 'https://mcp.example.com/mcp' });
  t.same(refused.json(), { error: 'invalid_target', error_description: 'a requested resource was not granted' });
  const ok = await redeem(app, client, code, verifier, { resource: 'https://api.example.com' });
  t.equal(ok.statusCode, 200, 'the code still redeems');
  t.equal(await liveTokens(app, 'user-42', client.id), 1);
});

t.test('a rotation cannot outlive a revocation of its chain', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const { verifier, challenge } = pkce();
  const first = (await redeem(app, client, await mintCode(app, client, challenge), verifier)).json();
  const second = (await refresh(app, client, first.refresh_token)).json();
  // As if a revocation had raced the rotation: an older member is revoked, the newest is not.
  await app.database.db
    .updateTable('refresh_tokens')
    .set({ revoked_at: new Date() })
    .where('token_hash', '=', hashSecret(first.refresh_token))
    .execute();
  const res = await refresh(app, client, second.refresh_token);
  t.equal(res.json().error, 'invalid_grant', 'a chain with a revoked member does not rotate');
  t.equal(await liveTokens(app, 'user-42', client.id), 0, 'and the straggler is revoked too');
});

t.test('a refresh issues only what the client and server allow now, not everything granted then', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app, { scopes: ['read', 'write'] });
  const { verifier, challenge } = pkce();
  const first = await redeem(app, client, await mintCode(app, client, challenge), verifier);
  t.equal(first.json().scope, 'read write');

  // The operator narrows the client after the user consented.
  await app.clientAdmin.update(client.id, { scopes: ['read'], resources: ['https://api.example.com'] });
  const refused = await refresh(app, client, first.json().refresh_token, { scope: 'write' });
  t.equal(refused.statusCode, 400);
  t.equal(refused.json().error, 'invalid_scope', 'a scope the client may no longer have is refused');
  const narrowed = await refresh(app, client, first.json().refresh_token);
  t.equal(narrowed.statusCode, 200, 'the refused request consumed nothing');
  t.equal(narrowed.json().scope, 'read', 'the token carries only what is still allowed');
  const claims1 = await claims(app, narrowed.json().access_token);
  t.equal(claims1.aud, 'https://api.example.com', 'and only resources still allowed');
  const wrongTarget = await refresh(app, client, narrowed.json().refresh_token, {
    resource: 'https://mcp.example.com/mcp',
  });
  t.equal(wrongTarget.json().error, 'invalid_target');

  // Every granted scope withdrawn: no token that silently carries none.
  const scoped = pkce();
  const readOnly = await redeem(
    app,
    client,
    await mintCode(app, client, scoped.challenge, {
      scopes: ['read'],
      resources: ['https://api.example.com'],
      sub: 'user-9',
    }),
    scoped.verifier,
  );
  t.equal(readOnly.statusCode, 200, readOnly.body);
  await app.clientAdmin.update(client.id, { scopes: ['write'] });
  const scopeless = await refresh(app, client, readOnly.json().refresh_token);
  t.equal(scopeless.json().error, 'invalid_grant', 'a grant none of whose scopes is allowed any more is over');
  t.equal(await liveTokens(app, 'user-9', client.id), 0);
  await app.clientAdmin.update(client.id, { scopes: ['read'] });

  // A grant for the MCP server alone, while the client may now use only the API: the grant is dead.
  const other = pkce();
  const mcpOnly = await redeem(
    app,
    client,
    await mintCode(app, client, other.challenge, {
      scopes: ['read'],
      resources: ['https://mcp.example.com/mcp'],
      sub: 'user-7',
    }),
    other.verifier,
  );
  t.equal(mcpOnly.statusCode, 400, 'a code whose only resource is no longer allowed gives no token either');
  t.equal(mcpOnly.json().error, 'invalid_grant');
  t.equal(await liveTokens(app, 'user-7', client.id), 0, 'and the chain its redemption started is revoked');
  await app.clientAdmin.update(client.id, { resources: ['https://mcp.example.com/mcp'] });
  const again = pkce();
  const granted = await redeem(
    app,
    client,
    await mintCode(app, client, again.challenge, {
      scopes: ['read'],
      resources: ['https://mcp.example.com/mcp'],
      sub: 'user-7',
    }),
    again.verifier,
  );
  t.equal(granted.statusCode, 200, granted.body);
  await app.clientAdmin.update(client.id, { resources: ['https://api.example.com'] });
  const dead = await refresh(app, client, granted.json().refresh_token);
  t.equal(dead.json().error, 'invalid_grant');
  t.equal(await liveTokens(app, 'user-7', client.id), 0, 'and its chain is revoked');
});
