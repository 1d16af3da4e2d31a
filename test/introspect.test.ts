import { CompactSign, SignJWT, decodeProtectedHeader, generateKeyPair } from 'jose';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import t from 'tap';
import { issueAccessToken } from '../src/oauth/tokens/access-token.js';
import { basic } from './fixtures/clients.js';
import { HANDSHAKE_ENV, unsecuredJwt } from './fixtures/host.js';
import { Browser, FORM, authorize, authorizeUrl, pkce, token } from './fixtures/registration.js';
import { buildTestApp } from './helper.js';
import { ISSUER } from './kit/issuer.js';

const API = 'https://api.example.com';
const MCP = 'https://mcp.example.com/mcp';
const REDIRECT = 'https://app.example.com/cb';
const ENV = {
  ...HANDSHAKE_ENV,
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: `${API}, ${MCP}`,
};

interface TestClient {
  id: string;
  secret: string | null;
  method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
}

async function client(app: FastifyInstance, overrides: Record<string, unknown> = {}): Promise<TestClient> {
  const { client: c, secret } = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
    scopes: ['read', 'write'],
    ...overrides,
  });
  return { id: c.client_id, secret, method: c.token_endpoint_auth_method };
}

/** A resource server: a confidential client whose own resources name the APIs it serves. */
function resourceServer(app: FastifyInstance, resources: string[]): Promise<TestClient> {
  return client(app, { name: 'Resource server', resources });
}

/** How a client authenticates a form request: Basic, post, or (public) its client_id alone. */
function credentials(c: TestClient, body: URLSearchParams): Record<string, string> {
  if (c.method === 'client_secret_basic') return { authorization: basic(c.id, c.secret!) };
  body.set('client_id', c.id);
  if (c.method === 'client_secret_post') body.set('client_secret', c.secret!);
  return {};
}

function introspect(
  app: FastifyInstance,
  caller: TestClient,
  params: Record<string, string>,
): Promise<LightMyRequestResponse> {
  const body = new URLSearchParams(params);
  const headers = { ...FORM, ...credentials(caller, body) };
  return app.inject({ method: 'POST', url: '/introspect', headers, payload: body.toString() });
}

async function clientCredentialsToken(
  app: FastifyInstance,
  c: TestClient,
  params: Record<string, string> = {},
): Promise<string> {
  const body = new URLSearchParams({ grant_type: 'client_credentials', ...params });
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, ...credentials(c, body) },
    payload: body.toString(),
  });
  if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`);
  return res.json().access_token;
}

/** Asserts the exact RFC 7662 §2.2 inactive answer: 200, no-store, `{"active":false}` and nothing else. */
function assertInactive(t: Tap.Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 200, `${what}: 200`);
  t.equal(res.body, '{"active":false}', `${what}: exactly {"active":false}`);
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`);
}

/** A confidential web client through the real flow: authorize, host sign-in, consent, code, token. */
async function userTokens(
  app: FastifyInstance,
  web: TestClient,
): Promise<{ access_token: string; refresh_token: string }> {
  const { verifier, challenge } = pkce();
  const callback = await authorize(
    new Browser(app),
    authorizeUrl(web.id, REDIRECT, challenge, { scope: 'read write' }),
  );
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code in ${callback}`);
  const res = await token(
    app,
    { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT },
    { authorization: basic(web.id, web.secret!) },
  );
  if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`);
  return res.json();
}

function webClient(app: FastifyInstance): Promise<TestClient> {
  return client(app, {
    name: 'Web app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
  });
}

function refresh(app: FastifyInstance, web: TestClient, refreshToken: string): Promise<LightMyRequestResponse> {
  return token(
    app,
    { grant_type: 'refresh_token', refresh_token: refreshToken },
    { authorization: basic(web.id, web.secret!) },
  );
}

t.test('a client_credentials access token introspected by its own client: active, with its claims', async (t) => {
  const app = await buildTestApp(t, ENV);
  const machine = await client(app);
  const jwt = await clientCredentialsToken(app, machine, { scope: 'read write', resource: MCP });
  const res = await introspect(app, machine, { token: jwt });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  t.match(res.headers['content-type'], /^application\/json/);
  const body = res.json();
  t.same(Object.keys(body), ['active', 'scope', 'client_id', 'token_type', 'exp', 'iat', 'sub', 'aud', 'iss', 'jti']);
  t.match(body, {
    active: true,
    scope: 'read write',
    client_id: machine.id,
    token_type: 'Bearer',
    sub: machine.id,
    aud: MCP,
    iss: ISSUER,
  });
  t.equal(body.exp - body.iat, 3600);
  t.ok(Math.abs(body.iat - Date.now() / 1000) < 5);
  t.match(body.jti, /^[A-Za-z0-9_-]{22}$/);

  const post = await client(app, { token_endpoint_auth_method: 'client_secret_post' });
  const postJwt = await clientCredentialsToken(app, post);
  const viaPost = await introspect(app, post, { token: postJwt, token_type_hint: 'refresh_token' });
  t.match(
    viaPost.json(),
    { active: true, client_id: post.id, aud: API },
    'client_secret_post works, and a wrong hint is only a hint (RFC 7662 §2.1)',
  );
  t.notOk('scope' in viaPost.json(), 'no scope member for a token without scope');
});

t.test(
  'who may see an access token (RFC 7662 §4): its client and resource servers of its audience, nobody else',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const machine = await client(app);
    const jwt = await clientCredentialsToken(app, machine, { resource: MCP });
    const mcpServer = await resourceServer(app, [MCP]);
    const res = await introspect(app, mcpServer, { token: jwt, token_type_hint: 'access_token' });
    t.match(
      res.json(),
      { active: true, client_id: machine.id, sub: machine.id, aud: MCP },
      'a resource server whose resources include the aud',
    );

    const apiServer = await resourceServer(app, [API]);
    assertInactive(t, await introspect(app, apiServer, { token: jwt }), 'a resource server of another resource');
    assertInactive(
      t,
      await introspect(app, await client(app), { token: jwt }),
      'an unrelated confidential client (no resources: not a resource server for anyone)',
    );

    const both = await clientCredentialsToken(app, machine, { resource: API });
    t.equal(
      (await introspect(app, apiServer, { token: both })).json().active,
      true,
      'the API server sees tokens for the API',
    );

    // A client that registered itself chose its own resources: that makes it no resource server.
    const { client: registered, secret } = await app.clientAdmin.create(
      { name: 'Self-registered', grant_types: ['client_credentials'], resources: [API] },
      { source: 'registration' },
    );
    const selfMade: TestClient = { id: registered.client_id, secret, method: registered.token_endpoint_auth_method };
    assertInactive(
      t,
      await introspect(app, selfMade, { token: both }),
      'a dynamically registered client naming the API in its resources',
    );
  },
);

t.test(
  'caller authentication: confidential clients with their secret only (RFC 7662 §2.1, RFC 6749 §5.2)',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const machine = await client(app);
    const jwt = await clientCredentialsToken(app, machine);

    const pub = await client(app, {
      name: 'Native',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/cb'],
      grant_types: ['authorization_code'],
    });
    const asPublic = await introspect(app, pub, { token: jwt });
    t.equal(asPublic.statusCode, 401, 'a public client naming itself is not authenticated');
    t.same(asPublic.json(), {
      error: 'invalid_client',
      error_description: 'introspection requires client authentication with a client secret',
    });
    t.notOk(asPublic.headers['www-authenticate'], 'no Basic challenge: Basic was not tried');

    const wrong = await introspect(app, { ...machine, secret: `${machine.secret}x` }, { token: jwt });
    t.equal(wrong.statusCode, 401);
    t.equal(wrong.json().error, 'invalid_client');
    t.equal(wrong.headers['www-authenticate'], 'Basic realm="gatehouse"', 'a Basic attempt gets a Basic challenge');

    const unknown = await introspect(
      app,
      { id: 'no-such-client', secret: machine.secret, method: 'client_secret_basic' },
      { token: jwt },
    );
    t.equal(unknown.statusCode, 401);
    t.same(unknown.json(), wrong.json(), 'an unknown client looks like a wrong secret');

    const none = await app.inject({
      method: 'POST',
      url: '/introspect',
      headers: FORM,
      payload: new URLSearchParams({ token: jwt }).toString(),
    });
    t.equal(none.statusCode, 401);
    t.equal(none.json().error, 'invalid_client');

    const idOnly = await app.inject({
      method: 'POST',
      url: '/introspect',
      headers: FORM,
      payload: new URLSearchParams({ token: jwt, client_id: machine.id }).toString(),
    });
    t.equal(idOnly.statusCode, 401, 'a confidential client_id without its secret');
    t.equal(idOnly.json().error, 'invalid_client');

    const disabled = await client(app);
    await app.clientAdmin.setDisabled(disabled.id, true);
    t.equal((await introspect(app, disabled, { token: jwt })).statusCode, 401, 'a disabled client');
  },
);

t.test(
  'refresh tokens from a real flow: active to their own client only, inactive once rotated or revoked',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const web = await webClient(app);
    const before = Math.floor(Date.now() / 1000);
    const tokens = await userTokens(app, web);

    const res = await introspect(app, web, { token: tokens.refresh_token, token_type_hint: 'refresh_token' });
    t.equal(res.statusCode, 200, res.body);
    t.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    t.same(
      Object.keys(body),
      ['active', 'scope', 'client_id', 'exp', 'iat', 'sub', 'iss'],
      'no aud, no token_type, no jti for an opaque refresh token',
    );
    t.match(body, { active: true, scope: 'read write', client_id: web.id, sub: 'alice', iss: ISSUER });
    t.ok(body.iat >= before - 1 && body.iat <= Date.now() / 1000 + 1);
    t.ok(
      Math.abs(body.exp - body.iat - 30 * 24 * 3600) <= 1,
      "exp: the chain's absolute expiry (REFRESH_TOKEN_TTL_SECONDS)",
    );

    const access = (
      await introspect(app, web, { token: tokens.access_token, token_type_hint: 'refresh_token' })
    ).json();
    t.match(
      access,
      { active: true, client_id: web.id, sub: 'alice', scope: 'read write', aud: MCP, token_type: 'Bearer' },
      "the user's access token too",
    );
    t.type(access.auth_time, 'number', 'auth_time when a user signed in (RFC 9068 §2.2.1)');

    assertInactive(
      t,
      await introspect(app, await webClient(app), { token: tokens.refresh_token }),
      "another client's refresh token",
    );
    assertInactive(
      t,
      await introspect(app, await resourceServer(app, [MCP]), { token: tokens.refresh_token }),
      'a refresh token, to a resource server',
    );

    const rotated = await refresh(app, web, tokens.refresh_token);
    t.equal(rotated.statusCode, 200, rotated.body);
    const next = rotated.json();
    assertInactive(t, await introspect(app, web, { token: tokens.refresh_token }), 'the rotated-away generation');
    const live = (await introspect(app, web, { token: next.refresh_token })).json();
    t.match(live, { active: true, sub: 'alice' }, 'the new generation');
    t.equal(live.exp, body.exp, 'the new generation keeps the chain expiry');

    const revoked = await app.inject({
      method: 'POST',
      url: '/revoke',
      headers: { ...FORM, authorization: basic(web.id, web.secret!) },
      payload: new URLSearchParams({ token: next.refresh_token }).toString(),
    });
    t.equal(revoked.statusCode, 200);
    assertInactive(t, await introspect(app, web, { token: next.refresh_token }), 'a revoked refresh token');
    t.equal(
      (await introspect(app, web, { token: next.access_token })).json().active,
      true,
      'an access token stays active until it expires: it is self-contained',
    );
  },
);

t.test('a refresh token whose chain has a revoked member is inactive, as rotation would refuse it', async (t) => {
  const app = await buildTestApp(t, ENV);
  const web = await webClient(app);
  const tokens = await userTokens(app, web);
  const next = (await refresh(app, web, tokens.refresh_token)).json();
  // A revocation that raced a rotation: only the older generation carries revoked_at.
  await app.database.db
    .updateTable('refresh_tokens')
    .set({ revoked_at: new Date() })
    .where('client_id', '=', web.id)
    .where('generation', '=', 0)
    .execute();
  assertInactive(t, await introspect(app, web, { token: next.refresh_token }), 'a later generation of a revoked chain');
});

t.test('an expired refresh token is inactive', async (t) => {
  const app = await buildTestApp(t, ENV);
  const web = await webClient(app);
  const tokens = await userTokens(app, web);
  await app.database.db
    .updateTable('refresh_tokens')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('client_id', '=', web.id)
    .execute();
  assertInactive(t, await introspect(app, web, { token: tokens.refresh_token }), 'past the chain expiry');
});

t.test('expired, forged, foreign and malformed access tokens are inactive, never an error', async (t) => {
  const app = await buildTestApp(t, ENV);
  const machine = await client(app);
  const signer = app.keys.current();
  const now = Math.floor(Date.now() / 1000);
  const claims = { issuer: ISSUER, subject: machine.id, clientId: machine.id, audience: [API], scopes: ['read'] };

  const expired = await issueAccessToken(signer, { ...claims, ttlSeconds: 60, now: now - 3600 });
  assertInactive(t, await introspect(app, machine, { token: expired.token }), 'expired an hour ago');
  const justExpired = await issueAccessToken(signer, { ...claims, ttlSeconds: 60, now: now - 70 });
  t.equal(
    (await introspect(app, machine, { token: justExpired.token })).json().active,
    true,
    'expired 10 s ago: within CLOCK_SKEW_SECONDS (30)',
  );
  const strict = await buildTestApp(t, { ...ENV, CLOCK_SKEW_SECONDS: '0' });
  assertInactive(
    t,
    await introspect(strict, machine, { token: justExpired.token }),
    'expired 10 s ago with no clock skew',
  );

  const wrongIssuer = await issueAccessToken(signer, {
    ...claims,
    issuer: 'https://other.example.com',
    ttlSeconds: 60,
    now,
  });
  assertInactive(t, await introspect(app, machine, { token: wrongIssuer.token }), 'another issuer, our key');

  const payload = {
    iss: ISSUER,
    sub: machine.id,
    aud: API,
    client_id: machine.id,
    jti: 'j1',
    iat: now,
    exp: now + 600,
  };
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const plainJwt = await new CompactSign(encode(payload))
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
    .sign(signer.key);
  assertInactive(t, await introspect(app, machine, { token: plainJwt }), 'our key but not typ at+jwt (RFC 9068 §4)');
  const control = await new CompactSign(encode(payload))
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' })
    .sign(signer.key);
  t.equal(
    (await introspect(app, machine, { token: control })).json().active,
    true,
    'the same claims as at+jwt are active (the control)',
  );

  // jose will not sign with an extension it does not know, so this one is signed by hand (ES256, the default).
  t.equal(signer.alg, 'ES256');
  const critInput = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: signer.kid, typ: 'at+jwt', crit: ['urn:x'], 'urn:x': 1 })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  // WebCrypto's ECDSA signature is already the R‖S form JWS uses (RFC 7518 §3.4).
  const critSignature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    signer.key,
    new TextEncoder().encode(critInput),
  );
  const withCrit = `${critInput}.${Buffer.from(critSignature).toString('base64url')}`;
  assertInactive(t, await introspect(app, machine, { token: withCrit }), 'a crit extension (RFC 7515 §4.1.11)');
  const notYet = await new CompactSign(encode({ ...payload, nbf: now + 3600 }))
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' })
    .sign(signer.key);
  assertInactive(t, await introspect(app, machine, { token: notYet }), 'nbf an hour ahead (RFC 7519 §4.1.5)');
  const noExp = await new CompactSign(encode({ ...payload, exp: undefined }))
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' })
    .sign(signer.key);
  assertInactive(t, await introspect(app, machine, { token: noExp }), 'no exp');
  const unknownKid = await new CompactSign(encode(payload))
    .setProtectedHeader({ alg: signer.alg, kid: 'not-a-kid-we-publish', typ: 'at+jwt' })
    .sign(signer.key);
  assertInactive(t, await introspect(app, machine, { token: unknownKid }), 'our key under a kid we do not publish');

  const good = await clientCredentialsToken(app, machine);
  const [h, p, s] = good.split('.') as [string, string, string];
  const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
  assertInactive(t, await introspect(app, machine, { token: `${h}.${p}.${flipped}` }), 'a tampered signature');
  const otherPayload = Buffer.from(JSON.stringify({ ...payload, sub: 'admin' })).toString('base64url');
  assertInactive(t, await introspect(app, machine, { token: `${h}.${otherPayload}.${s}` }), 'a tampered payload');
  assertInactive(
    t,
    await introspect(app, machine, { token: unsecuredJwt(payload, { typ: 'at+jwt', kid: signer.kid }) }),
    'alg none',
  );

  const foreign = await generateKeyPair('ES256');
  const forged = await new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: decodeProtectedHeader(good).kid!, typ: 'at+jwt' })
    .sign(foreign.privateKey);
  assertInactive(t, await introspect(app, machine, { token: forged }), 'signed by a foreign key under our kid');
  const hmac = await new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', kid: signer.kid, typ: 'at+jwt' })
    .sign(new TextEncoder().encode('x'.repeat(32)));
  assertInactive(t, await introspect(app, machine, { token: hmac }), 'HS256');

  for (const [what, value] of [
    ['garbage', 'not a token at all'],
    ['a 43-character string that is no refresh token', 'A'.repeat(43)],
    ['dots only', '..'],
    ['bad base64 header', '!!!.e30.sig'],
    ['a header that is not JSON', `${Buffer.from('{nope').toString('base64url')}.e30.c2ln`],
    [
      'a JSON array payload',
      `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: signer.kid, typ: 'at+jwt' })).toString('base64url')}.${Buffer.from('[]').toString('base64url')}.c2ln`,
    ],
    ['five parts (JWE form)', 'a.b.c.d.e'],
    ['oversized', `${h}.${'A'.repeat(16_000)}.${s}`],
  ] as const) {
    assertInactive(t, await introspect(app, machine, { token: value }), what);
  }
  const tooLarge = await introspect(app, machine, { token: 'A'.repeat(20_000) });
  t.equal(tooLarge.statusCode, 413, 'beyond the body limit: the request is refused before any check');
});

t.test('request checks as on /revoke: form body, one of each parameter, token required', async (t) => {
  const app = await buildTestApp(t, ENV);
  const machine = await client(app);
  const auth = { authorization: basic(machine.id, machine.secret!) };
  const missing = await app.inject({
    method: 'POST',
    url: '/introspect',
    headers: { ...FORM, ...auth },
    payload: 'token_type_hint=access_token',
  });
  t.equal(missing.statusCode, 400);
  t.same(missing.json(), { error: 'invalid_request', error_description: 'missing parameter: token' });
  const empty = await app.inject({
    method: 'POST',
    url: '/introspect',
    headers: { ...FORM, ...auth },
    payload: 'token=',
  });
  t.equal(
    empty.json().error_description,
    'missing parameter: token',
    'an empty parameter counts as omitted (RFC 6749 §3.1)',
  );
  const twice = await app.inject({
    method: 'POST',
    url: '/introspect',
    headers: { ...FORM, ...auth },
    payload: 'token=a&token=b',
  });
  t.equal(twice.statusCode, 400);
  t.same(twice.json(), {
    error: 'invalid_request',
    error_description: 'parameter token is repeated (RFC 6749 section 3.2)',
  });
  const json = await app.inject({
    method: 'POST',
    url: '/introspect',
    headers: { 'content-type': 'application/json', ...auth },
    payload: { token: 'x' },
  });
  t.equal(json.statusCode, 415);
  t.equal(json.json().error, 'invalid_request');
  const get = await app.inject({ method: 'GET', url: '/introspect?token=x', headers: auth });
  t.equal(get.statusCode, 405);
  t.match(get.headers.allow, /POST/);
});

t.test(
  'metadata advertises the endpoint; no CORS (callers hold secrets, browsers do not); tokens never reach the log',
  async (t) => {
    const logs: Array<Record<string, unknown>> = [];
    const app = await buildTestApp(t, { ...ENV, LOG_LEVEL: 'debug' }, { logs });
    const doc = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
    t.equal(doc.introspection_endpoint, `${ISSUER}/introspect`);
    t.same(
      doc.introspection_endpoint_auth_methods_supported,
      ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      'no "none": public clients cannot introspect',
    );

    const machine = await client(app);
    const jwt = await clientCredentialsToken(app, machine);
    const body = new URLSearchParams({ token: jwt });
    const res = await app.inject({
      method: 'POST',
      url: '/introspect',
      headers: { ...FORM, origin: 'https://rs.example', authorization: basic(machine.id, machine.secret!) },
      payload: body.toString(),
    });
    t.equal(res.json().active, true);
    t.notOk(res.headers['access-control-allow-origin'], 'no CORS headers');
    await introspect(app, machine, { token: 'x'.repeat(200) });
    const text = logs.map((l) => JSON.stringify(l)).join('\n');
    t.ok(
      logs.some((l) => l.msg === 'request completed' && l.url === '/introspect'),
      'the requests were logged',
    );
    t.notOk(text.includes(jwt.split('.')[2]!), 'the token is not in the log');
    t.notOk(text.includes(machine.secret!), 'nor the secret');
  },
);

t.test('a token whose key was retired immediately (compromise) is inactive at once', async (t) => {
  const app = await buildTestApp(t, ENV);
  const machine = await client(app);
  const jwt = await clientCredentialsToken(app, machine);
  t.equal((await introspect(app, machine, { token: jwt })).json().active, true);
  await app.keys.retire(decodeProtectedHeader(jwt).kid!, { immediately: true });
  assertInactive(t, await introspect(app, machine, { token: jwt }), 'its key is no longer published');
  const fresh = await clientCredentialsToken(app, machine);
  t.equal((await introspect(app, machine, { token: fresh })).json().active, true, 'tokens of the new key are active');
});
