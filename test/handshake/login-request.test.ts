import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { createLoginRequest, type LoginRequestDeps, sessionSatisfies } from '../../src/handshake/login-request.js';
import { type Clock, epochSeconds, systemClock } from '../../src/lib/clock.js';
import { OAuthError } from '../../src/oauth/errors.js';
import { HOST_ID, HOST_SECRET, hostKeyPair, parseLoginRequest } from '../fixtures/host.js';
import { buildTestApp } from '../helper.js';
import { ISSUER, REDIRECT_URI, handshakeEnv, pendingRequest, webClient } from '../fixtures/handshake.js';

/** What /authorize hands createLoginRequest: the app's handshake settings, issuer, active key and clock. */
function depsOf(app: FastifyInstance, clock: Clock = systemClock): LoginRequestDeps {
  return { handshake: app.config.handshake, issuer: app.issuer, signer: () => app.keys.current(), clock };
}

t.test('login_request (HS256 with HANDSHAKE_SECRET): URL, header and claims', async (t) => {
  const app = await buildTestApp(t, handshakeEnv({ SIGN_IN_URL: 'https://host.example.com/login?tenant=acme&x=1' }));
  const client = await webClient(app, { name: 'Claude' });
  const { pending } = await pendingRequest(app, client, {
    prompt: 'login',
    max_age: 300,
    login_hint: 'ada@example.com',
    ui_locales: 'fr en',
  });
  const issuedAt = new Date(Date.now() - 30_000);
  const location = await createLoginRequest(
    depsOf(app, () => issuedAt),
    pending,
    client,
  );
  const { url, jwt, header } = parseLoginRequest(location);
  t.equal(`${url.origin}${url.pathname}`, 'https://host.example.com/login');
  t.equal(url.searchParams.get('tenant'), 'acme', 'the query SIGN_IN_URL already has is kept');
  t.equal(url.searchParams.get('x'), '1');
  t.same(header, { alg: 'HS256', typ: 'login-request+jwt' });
  const { payload } = await jwtVerify(jwt, new TextEncoder().encode(HOST_SECRET), {
    algorithms: ['HS256'],
    issuer: ISSUER,
    audience: HOST_ID,
    typ: 'login-request+jwt',
  });
  t.equal(payload.jti, pending.id);
  t.equal(payload.exp, Math.floor(pending.expires_at.getTime() / 1000), 'lives exactly as long as the pending request');
  t.equal(
    payload.iat,
    epochSeconds(() => issuedAt),
    'iat is the clock it was given',
  );
  t.equal(payload.return_to, `${ISSUER}/sign-in/complete`);
  t.equal(payload.prompt, 'login');
  t.equal(payload.max_age, 300);
  t.equal(payload.login_hint, 'ada@example.com');
  t.equal(payload.ui_locales, 'fr en');
  t.equal(payload.client_name, 'Claude');
  t.equal(payload.client_id, client.client_id);
});

t.test('login_request without hints carries none of them', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const { pending } = await pendingRequest(app, client);
  const { payload } = parseLoginRequest(await createLoginRequest(depsOf(app), pending, client));
  t.same(Object.keys(payload).sort(), ['aud', 'client_id', 'client_name', 'exp', 'iat', 'iss', 'jti', 'return_to']);
});

t.test(
  'login_request without a shared secret is signed with the active key and verifies against the JWKS',
  async (t) => {
    const host = await hostKeyPair();
    const app = await buildTestApp(t, handshakeEnv({ HANDSHAKE_SECRET: '', ...host.env }));
    const client = await webClient(app);
    const { pending } = await pendingRequest(app, client);
    const { jwt, header } = parseLoginRequest(await createLoginRequest(depsOf(app), pending, client));
    const signer = app.keys.current();
    t.same(header, { alg: signer.alg, kid: signer.kid, typ: 'login-request+jwt' });
    const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: HOST_ID,
      typ: 'login-request+jwt',
    });
    t.equal(payload.jti, pending.id);
    await t.rejects(jwtVerify(jwt, new TextEncoder().encode(HOST_SECRET)), 'not MACed with anything');
  },
);

t.test('/authorize answers 303 to the login_request URL, not cached', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    scope: 'read',
  });
  const res = await app.inject({ method: 'GET', url: `/authorize?${query.toString()}` });
  t.equal(res.statusCode, 303, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(res.headers['referrer-policy'], 'no-referrer');
  const jti = parseLoginRequest(res.headers.location).payload.jti;
  const stored = await app.database.db
    .selectFrom('authorization_requests')
    .select('client_id')
    .where('id', '=', jti)
    .executeTakeFirst();
  t.equal(stored?.client_id, client.client_id, 'the login_request names the stored pending request');
});

t.test('createLoginRequest refuses to run without SIGN_IN_URL', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const { pending } = await pendingRequest(app, client);
  const deps = { ...depsOf(app), handshake: { ...app.config.handshake, signInUrl: '' } };
  const err = await createLoginRequest(deps, pending, client).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof OAuthError && err.error === 'server_error', 'a server_error, not a URL without a host');
});

t.test('sessionSatisfies: prompt=login and max_age freshness', async (t) => {
  const created = new Date('2026-01-01T12:00:00.400Z');
  const now = new Date('2026-01-01T12:00:10Z');
  const at = (iso: string) => ({ authTime: new Date(iso) });
  const req = (prompt: string | null, maxAge: number | null) => ({ prompt, max_age: maxAge, created_at: created });
  t.equal(sessionSatisfies(at('2026-01-01T11:00:00Z'), req(null, null), now), true, 'no constraint: any session');
  t.equal(
    sessionSatisfies(at('2026-01-01T11:59:59Z'), req('login', null), now),
    false,
    'prompt=login: a sign-in before the request is not enough',
  );
  t.equal(
    sessionSatisfies(at('2026-01-01T12:00:00Z'), req('login', null), now),
    true,
    'the same second as the request counts (auth_time is whole seconds)',
  );
  t.equal(sessionSatisfies(at('2026-01-01T11:59:40Z'), req('login', null), now, 30), true, 'within the clock skew');
  t.equal(sessionSatisfies(at('2026-01-01T11:59:00Z'), req(null, 60), now), false, 'max_age=60: 70 s old is too old');
  t.equal(sessionSatisfies(at('2026-01-01T11:59:10Z'), req(null, 60), now), true, 'exactly max_age old is fine');
  t.equal(sessionSatisfies(at('2026-01-01T11:59:00Z'), req(null, 60), now, 30), true, 'within the clock skew');
  t.equal(
    sessionSatisfies(at('2026-01-01T12:00:09Z'), req(null, 0), now),
    false,
    'max_age=0 with no skew: only a sign-in this instant',
  );
  t.equal(
    sessionSatisfies(at('2026-01-01T12:00:05Z'), req('consent', 3600), now),
    true,
    'prompt=consent says nothing about sign-in',
  );
});
