import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import { buildApp } from '../src/app.js';
import { sweepExpired } from '../src/services/janitor.js';
import { basic } from './fixtures/clients.js';
import { HANDSHAKE_ENV } from './fixtures/host.js';
import { buildTestApp, testConfig, testDatabase } from './helper.js';
import { clientKey, jwksOf } from './kit/client-keys.js';
import { ISSUER } from './kit/issuer.js';
import { pkce } from './kit/pkce.js';

/**
 * The rules around pushed authorization requests (RFC 9126) and the FAPI 2.0 client profile, in
 * process: what /par refuses and how (§2.3, JSON), a request_uri's expiry, PAR required server-wide and
 * per client (§6), `request` objects refused, the FAPI 2.0 profile's metadata rules, CORS, and the
 * janitor. The flows themselves run with real clients in test/interop/par.test.ts.
 */

const ENV = { ...HANDSHAKE_ENV, SCOPES: '{"read":"Read your data"}', RESOURCES: 'https://api.example.com' };
const REDIRECT = 'http://127.0.0.1:47001/cb';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** An app whose clock the test moves (`clock.skip(seconds)`). */
async function appWithClock(t: Tap.Test, env: Record<string, string> = {}) {
  let offset = 0;
  const clock = Object.assign(() => new Date(Date.now() + offset), {
    skip: (seconds: number) => void (offset += seconds * 1000),
  });
  const app = await buildApp(testConfig({ ...ENV, ...env }), { database: await testDatabase(), clock });
  t.teardown(() => app.close());
  await app.ready();
  return { app, clock };
}

async function publicClient(app: FastifyInstance, extra: Record<string, unknown> = {}): Promise<string> {
  const { client } = await app.clientAdmin.create({
    name: 'Native',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    scopes: ['read'],
    ...extra,
  });
  return client.client_id;
}

function request(clientId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    client_id: clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
    scope: 'read',
    ...extra,
  };
}

function push(app: FastifyInstance, form: Record<string, string>, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/par',
    headers: { ...FORM, ...headers },
    payload: new URLSearchParams(form).toString(),
  });
}

function authorize(app: FastifyInstance, query: Record<string, string>) {
  return app.inject({ method: 'GET', url: `/authorize?${new URLSearchParams(query)}` });
}

/** The error an operator's client is sent back with (RFC 6749 §4.1.2.1, to its validated redirect URI). */
function redirectedError(res: { statusCode: number; headers: Record<string, unknown> }) {
  const location = new URL(String(res.headers.location));
  return {
    status: res.statusCode,
    at: `${location.origin}${location.pathname}`,
    error: location.searchParams.get('error'),
    description: location.searchParams.get('error_description') ?? '',
  };
}

t.test('/par answers 201 with a request_uri; errors are RFC 9126 §2.3 JSON, never redirects', async (t) => {
  const app = await buildTestApp(t, ENV);
  const id = await publicClient(app);
  const ok = await push(app, request(id));
  t.equal(ok.statusCode, 201, ok.body);
  t.equal(ok.headers['cache-control'], 'no-store');
  t.match(ok.json(), { request_uri: /^urn:ietf:params:oauth:request_uri:/, expires_in: 60 });

  const refused = async (form: Record<string, string>, status: number, error: string, description?: RegExp) => {
    const res = await push(app, form);
    t.equal(res.statusCode, status, `${error}: ${res.body}`);
    t.match(res.headers['content-type'], /^application\/json/);
    t.notOk(res.headers.location, 'never a redirect');
    t.equal(res.json().error, error);
    if (description) t.match(res.json().error_description, description);
  };
  await refused(request(id, { code_challenge: '' }), 400, 'invalid_request', /code_challenge/);
  await refused(request(id, { code_challenge_method: 'plain' }), 400, 'invalid_request');
  await refused(request(id, { response_type: 'token' }), 400, 'unsupported_response_type');
  await refused(request(id, { redirect_uri: 'https://evil.example.com/cb' }), 400, 'invalid_request', /redirect_uri/);
  await refused(request(id, { scope: 'admin' }), 400, 'invalid_scope');
  await refused(
    request(id, { request_uri: 'urn:ietf:params:oauth:request_uri:x' }),
    400,
    'invalid_request',
    /section 2.1/,
  );
  await refused(request(id, { request: 'eyJhbGciOiJub25lIn0.e30.' }), 400, 'request_not_supported');
  await refused(request('no-such-client'), 401, 'invalid_client');
  await refused({ response_type: 'code' }, 401, 'invalid_client', /client authentication is required/);

  const machine = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
    redirect_uris: ['https://machine.example.com/cb'],
  });
  const wrongSecret = await push(app, request(machine.client.client_id), {
    authorization: basic(machine.client.client_id, 'wrong'),
  });
  t.equal(wrongSecret.statusCode, 401);
  t.equal(wrongSecret.json().error, 'invalid_client');
  const unauthorized = await push(
    app,
    request(machine.client.client_id, { redirect_uri: 'https://machine.example.com/cb' }),
    {
      authorization: basic(machine.client.client_id, machine.secret!),
    },
  );
  t.equal(unauthorized.json().error, 'unauthorized_client', 'a client without authorization_code');

  const notForm = await app.inject({
    method: 'POST',
    url: '/par',
    headers: { 'content-type': 'application/json' },
    payload: '{}',
  });
  t.equal(notForm.statusCode, 415);
  const get = await app.inject({ method: 'GET', url: '/par' });
  t.equal(get.statusCode, 405, 'RFC 9126 §2.3: other methods are 405');
  t.equal(get.headers.allow, 'POST');

  // CORS like /token: a browser-based public client pushes with fetch (no credentials).
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/par',
    headers: { origin: 'https://spa.example', 'access-control-request-method': 'POST' },
  });
  t.equal(preflight.statusCode, 204);
  t.equal(preflight.headers['access-control-allow-origin'], '*');
});

t.test('a request_uri expires after PAR_REQUEST_URI_TTL_SECONDS and is used once', async (t) => {
  const { app, clock } = await appWithClock(t, { PAR_REQUEST_URI_TTL_SECONDS: '30' });
  const id = await publicClient(app);
  const first = (await push(app, request(id))).json();
  t.equal(first.expires_in, 30);
  clock.skip(31);
  const late = await authorize(app, { client_id: id, request_uri: first.request_uri });
  t.equal(late.statusCode, 400);
  t.match(late.body, /invalid_request_uri/, 'an expired request_uri');
  const second = (await push(app, request(id))).json();
  const used = await authorize(app, { client_id: id, request_uri: second.request_uri });
  t.equal(used.statusCode, 303, 'on to sign-in');
  const twice = await authorize(app, { client_id: id, request_uri: second.request_uri });
  t.match(twice.body, /invalid_request_uri/, 'a second use');
});

t.test('/authorize refuses a request object (RFC 9101 is not supported)', async (t) => {
  const app = await buildTestApp(t, ENV);
  const id = await publicClient(app);
  const res = await authorize(app, { ...request(id), request: 'eyJhbGciOiJub25lIn0.e30.' });
  t.match(redirectedError(res), { status: 303, at: REDIRECT, error: 'request_not_supported' });
});

t.test('PAR_REQUIRED: /authorize takes pushed requests only, and the discovery document says so', async (t) => {
  const app = await buildTestApp(t, { ...ENV, PAR_REQUIRED: 'true' });
  const doc = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  t.equal(doc.require_pushed_authorization_requests, true);
  t.equal(doc.pushed_authorization_request_endpoint, `${ISSUER}/par`);
  const id = await publicClient(app);
  const plain = redirectedError(await authorize(app, request(id)));
  t.match(plain, { status: 303, at: REDIRECT, error: 'invalid_request' });
  t.match(plain.description, /this server requires pushed authorization requests/);
  const pushed = (await push(app, request(id))).json();
  t.equal((await authorize(app, { client_id: id, request_uri: pushed.request_uri })).statusCode, 303);
});

t.test('require_pushed_authorization_requests per client (RFC 9126 §6)', async (t) => {
  const app = await buildTestApp(t, ENV);
  const strict = await publicClient(app, { require_pushed_authorization_requests: true });
  const relaxed = await publicClient(app);
  const res = redirectedError(await authorize(app, request(strict)));
  t.match(res, { status: 303, error: 'invalid_request' });
  t.match(
    res.description,
    /this client \(require_pushed_authorization_requests\) requires pushed authorization requests/,
  );
  const other = await authorize(app, request(relaxed));
  t.equal(other.statusCode, 303);
  t.notMatch(String(other.headers.location), /error=/, 'other clients are unaffected');

  // A self-registered client's redirect is not trusted (RFC 9700 §4.11.2): the same error, on the page.
  const { client: registered } = await app.clientAdmin.create(
    {
      name: 'Registered',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT],
      require_pushed_authorization_requests: true,
    },
    { source: 'registration' },
  );
  const page = await authorize(app, request(registered.client_id, { scope: '' }));
  t.equal(page.statusCode, 400);
  t.match(page.body, /requires pushed authorization requests/);
});

t.test('security_profile fapi2: the metadata refuses anything weaker, naming the field', async (t) => {
  const app = await buildTestApp(t, ENV);
  const key = await clientKey('ES256');
  const base = {
    name: 'FAPI',
    redirect_uris: ['https://bank.example.com/cb'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: jwksOf(key),
    security_profile: 'fapi2',
  };
  const refused = (input: Record<string, unknown>, field: string, reason: RegExp) =>
    t.rejects(app.clientAdmin.create(input), { field, message: reason }, field);
  await refused(
    { ...base, token_endpoint_auth_method: 'client_secret_basic', jwks: undefined },
    'token_endpoint_auth_method',
    /private_key_jwt for security_profile fapi2/,
  );
  await refused(
    { ...base, token_endpoint_auth_method: 'none', jwks: undefined },
    'token_endpoint_auth_method',
    /private_key_jwt/,
  );
  await refused({ ...base, token_endpoint_auth_signing_alg: 'RS256' }, 'token_endpoint_auth_signing_alg', /FAPI 2.0/);
  await refused(
    { ...base, require_pushed_authorization_requests: false },
    'require_pushed_authorization_requests',
    /must be true/,
  );
  await refused({ ...base, security_profile: 'fapi1' }, 'security_profile', /must be one of fapi2/);
  await refused({ ...base, dpop_bound_access_tokens: false }, 'dpop_bound_access_tokens', /must be true/);
  const { client } = await app.clientAdmin.create(base);
  t.equal(client.require_pushed_authorization_requests, true);
  t.equal(client.dpop_bound_access_tokens, true, 'the profile implies DPoP-bound tokens');
  t.equal(client.security_profile, 'fapi2');

  // RS256 is outside FAPI 2.0 (§5.4.1) even when the client registered no algorithm.
  const rsa = await clientKey('RS256', 'rsa');
  const { client: withRsa } = await app.clientAdmin.create({
    ...base,
    grant_types: ['authorization_code', 'client_credentials'],
    jwks: jwksOf(key, rsa),
  });
  const assertion = (signer: typeof key, alg: string) =>
    new SignJWT({ jti: `${alg}-${Math.random()}` })
      .setProtectedHeader({ alg, kid: signer.kid })
      .setIssuer(withRsa.client_id)
      .setSubject(withRsa.client_id)
      .setAudience(ISSUER)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(signer.privateKey);
  // The profile implies DPoP-bound tokens (FAPI 2.0 §5.3.2.1): every token request carries a proof.
  const dpopKey = await generateKeyPair('ES256');
  const dpopJwk = await exportJWK(dpopKey.publicKey);
  const proof = () =>
    new SignJWT({ htm: 'POST', htu: `${ISSUER}/token`, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: dpopJwk })
      .setIssuedAt()
      .sign(dpopKey.privateKey);
  const token = async (signer: typeof key, alg: string) =>
    app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...FORM, dpop: await proof() },
      payload: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(signer, alg),
      }).toString(),
    });
  t.equal((await token(key, 'ES256')).statusCode, 200, 'ES256 is a FAPI 2.0 algorithm');
  const rs = await token(rsa, 'RS256');
  t.equal(rs.statusCode, 401);
  t.same(rs.json(), { error: 'invalid_client', error_description: 'client authentication failed' });
});

t.test('failed client assertions log why, and never the assertion', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  const app = await buildTestApp(t, { ...ENV, LOG_LEVEL: 'info' }, { logs });
  const key = await clientKey('ES256');
  const { client } = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: jwksOf(key),
  });
  const assertion = await new SignJWT({ jti: 'logged-1' })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setIssuer(client.client_id)
    .setSubject(client.client_id)
    .setAudience(`${ISSUER}/token`)
    .setIssuedAt()
    .setExpirationTime('1m')
    .sign(key.privateKey);
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    headers: FORM,
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    }).toString(),
  });
  t.equal(res.statusCode, 401);
  t.notMatch(res.body, /aud/, 'the reason is not sent');
  const text = JSON.stringify(logs);
  t.match(text, /aud is not the issuer identifier alone/, 'the reason is logged for the operator');
  t.notOk(text.includes(assertion), 'the assertion is never logged');
  t.notOk(text.includes(assertion.split('.')[2]!), 'not even its signature');
});

t.test('the janitor deletes expired pushed requests and expired assertion ids', async (t) => {
  const { app, clock } = await appWithClock(t);
  const db = app.database.db;
  const id = await publicClient(app);
  await push(app, request(id));
  await db
    .insertInto('client_assertion_jtis')
    .values({ jti_hash: 'old-jti', expires_at: new Date(Date.now() - 1000) })
    .execute();
  await db
    .insertInto('client_assertion_jtis')
    .values({ jti_hash: 'live-jti', expires_at: new Date(Date.now() + 600_000) })
    .execute();
  clock.skip(120);
  const swept = await sweepExpired(db, {
    retentionSeconds: 0,
    sessionIdleSeconds: 86400,
    accessTokenLifetimeSeconds: 3630,
    clock,
  });
  t.ok(swept.pushed_authorization_requests >= 1, JSON.stringify(swept));
  t.ok(swept.client_assertion_jtis >= 1);
  const left = await db.selectFrom('client_assertion_jtis').select('jti_hash').execute();
  t.ok(
    left.some((r) => r.jti_hash === 'live-jti'),
    'an unexpired assertion id stays',
  );
  t.notOk(left.some((r) => r.jti_hash === 'old-jti'));
  const pending = await db
    .selectFrom('pushed_authorization_requests')
    .select('client_id')
    .where('client_id', '=', id)
    .execute();
  t.equal(pending.length, 0);
});
