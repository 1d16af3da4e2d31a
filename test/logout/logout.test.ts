import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createLocalJWKSet, decodeJwt, generateKeyPair, type JSONWebKeySet, jwtVerify, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import t from 'tap';
import { buildAdminApp } from '../../src/admin-app.js';
import { buildApp } from '../../src/app.js';
import type { Client } from '../../src/oauth/client.js';
import { clientMetadataPolicy, validateClientMetadata } from '../../src/oauth/client-metadata.js';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { createAuthorizationCode } from '../../src/repositories/authorization-code.repository.js';
import { pkce } from '../kit/pkce.js';
import { issueAccessToken } from '../../src/oauth/tokens/access-token.js';
import { LogoutDeliveries } from '../../src/services/logout/deliveries.js';
import { HOST_ID, HOST_SECRET, signLoginResponse } from '../fixtures/host.js';
import {
  ISSUER,
  REDIRECT_URI,
  SESSION_COOKIE,
  complete,
  errorDescription,
  handshakeEnv,
  pendingRequest,
  shown,
} from '../fixtures/handshake.js';
import { testConfig, testDatabase } from '../helper.js';

/**
 * Logout (issue 11): RP-Initiated Logout 1.0 at /sign-out with id_token_hint, Back-Channel Logout 1.0
 * logout tokens delivered from the outbox to a test RP listening on 127.0.0.1, and the host's signed
 * sign-out message. The hints an RP really has are the ID tokens Gatehouse issued it: `oidcSignIn` signs in
 * with scope openid and redeems the code for one. Hints no flow can produce (issued long ago, to a session
 * that does not exist, to another user) are minted with Gatehouse's active key in the shape OpenID Connect
 * Core gives them (iss, sub, aud, sid, iat, exp).
 */

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const POST_LOGOUT_URI = 'https://app.example.com/signed-out';

/** A Gatehouse on a movable clock; the outbox is worked by the tests (kick/idle, deliverDue), not a timer. */
async function logoutApp(
  t: Tap.Test,
  overrides: Record<string, string> = {},
): Promise<{ app: FastifyInstance; clock: { now: Date } }> {
  const clock = { now: new Date() };
  const app = await buildApp(
    testConfig(
      handshakeEnv({
        BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES: 'true',
        BACKCHANNEL_LOGOUT_POLL_MS: '3600000',
        ...overrides,
      }),
    ),
    { database: await testDatabase(), clock: () => clock.now },
  );
  t.teardown(() => app.close());
  await app.ready();
  return { app, clock };
}

/** What the test RP received at its back-channel logout endpoint. */
interface Received {
  contentType: string | undefined;
  form: URLSearchParams;
}

/** A relying party's back-channel logout endpoint on 127.0.0.1: answers each POST with the next status (200 after). */
async function testRp(t: Tap.Test, statuses: number[] = []): Promise<{ uri: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        contentType: req.headers['content-type'],
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      });
      res.writeHead(statuses.shift() ?? 200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { uri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`, received };
}

/** An operator's client that skips consent (so signing in issues a code at once) with a back-channel logout URI. */
async function rpClient(app: FastifyInstance, overrides: Record<string, unknown> = {}): Promise<Client> {
  const { client } = await app.clientAdmin.create({
    name: 'Relying party',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
    skip_consent: true,
    ...overrides,
  });
  return client;
}

/** Signs `sub` in for `client` through the handshake until a code is issued; the session cookie and its sid. */
async function signIn(app: FastifyInstance, client: Client, sub: string): Promise<{ cookie: string; sid: string }> {
  const { pending, cookies } = await pendingRequest(app, client);
  const res = await complete(app, await signLoginResponse({ request: pending.id, aud: ISSUER, sub }), cookies);
  if (res.statusCode !== 303 || !String(res.headers.location).startsWith(REDIRECT_URI))
    throw new Error(`expected a code, got ${res.statusCode} ${String(res.headers.location)}`);
  const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
  const row = await app.database.db
    .selectFrom('sessions')
    .select('sid')
    .where('id_hash', '=', hashSecret(cookie))
    .executeTakeFirstOrThrow();
  return { cookie, sid: row.sid };
}

/** Redeems `code` at /token as a confidential client (client_secret_basic) with its PKCE verifier. */
function redeemCode(app: FastifyInstance, clientId: string, secret: string, code: string, verifier: string) {
  return app.inject({
    method: 'POST',
    url: '/token',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    }).toString(),
  });
}

/**
 * A relying party signs `sub` in with scope openid through the handshake and redeems the code at /token
 * (client_secret_basic, PKCE, nonce): its client, the browser's session, and the ID token Gatehouse issued.
 */
async function oidcSignIn(
  app: FastifyInstance,
  sub: string,
  overrides: Record<string, unknown> = {},
): Promise<{ client: Client; cookie: string; sid: string; idToken: string }> {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Relying party',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
    skip_consent: true,
    token_endpoint_auth_method: 'client_secret_basic',
    ...overrides,
  });
  const { verifier, challenge } = pkce();
  const { pending, cookies } = await pendingRequest(app, client, {
    scopes: ['openid', 'read'],
    code_challenge: challenge,
    nonce: `n-${randomBytes(4).toString('hex')}`,
  });
  const res = await complete(app, await signLoginResponse({ request: pending.id, aud: ISSUER, sub }), cookies);
  const location = new URL(String(res.headers.location));
  const code = location.searchParams.get('code');
  if (res.statusCode !== 303 || location.origin + location.pathname !== REDIRECT_URI || !code)
    throw new Error(`expected a code, got ${res.statusCode} ${location.href}`);
  const token = await redeemCode(app, client.client_id, secret!, code, verifier);
  const idToken = token.json<{ id_token?: string }>().id_token;
  if (token.statusCode !== 200 || !idToken) throw new Error(`expected an ID token, got ${token.body}`);
  const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
  const row = await app.database.db
    .selectFrom('sessions')
    .select('sid')
    .where('id_hash', '=', hashSecret(cookie))
    .executeTakeFirstOrThrow();
  return { client, cookie, sid: row.sid, idToken };
}

/** An ID token as OpenID Connect Core shapes it, signed with Gatehouse's active key: for hints no flow gives. */
async function idToken(
  app: FastifyInstance,
  claims: { sub: string; aud: string; sid?: string; iat?: number; exp?: number },
  header: Record<string, unknown> = {},
): Promise<string> {
  const signer = app.keys.current();
  const iat = claims.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT', ...header })
    .setIssuer(ISSUER)
    .setSubject(claims.sub)
    .setAudience(claims.aud)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp ?? iat + 300)
    .sign(signer.key);
}

function signOutGet(
  app: FastifyInstance,
  params: Record<string, string>,
  cookie?: string,
  site = 'cross-site',
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'GET',
    url: `/sign-out?${new URLSearchParams(params).toString()}`,
    headers: { 'sec-fetch-site': site },
    ...(cookie ? { cookies: { [SESSION_COOKIE]: cookie } } : {}),
  });
}

/** Validates a logout token the way an RP must (Back-Channel Logout 1.0 §2.6), against Gatehouse's JWKS. */
async function validateLogoutToken(app: FastifyInstance, token: string, clientId: string) {
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: ISSUER,
    audience: clientId,
    typ: 'logout+jwt',
    requiredClaims: ['iat', 'exp', 'jti', 'events'],
  });
  return { payload, protectedHeader };
}

async function liveSessions(app: FastifyInstance, sub: string): Promise<number> {
  const rows = await app.database.db
    .selectFrom('sessions')
    .select('sid')
    .where('sub', '=', sub)
    .where('revoked_at', 'is', null)
    .execute();
  return rows.length;
}

/** The outbox rows of one client (the tests of this file share a database). */
async function outbox(app: FastifyInstance, clientId: string) {
  return app.database.db.selectFrom('logout_deliveries').selectAll().where('client_id', '=', clientId).execute();
}

t.test('discovery advertises the end_session_endpoint and back-channel logout with sid', async (t) => {
  const { app } = await logoutApp(t);
  const doc = (await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
  t.equal(doc.end_session_endpoint, `${ISSUER}/sign-out`);
  t.equal(doc.backchannel_logout_supported, true);
  t.equal(doc.backchannel_logout_session_supported, true);
  const oauth = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  t.notOk('end_session_endpoint' in oauth, 'an OpenID Connect field, not an RFC 8414 one');
});

t.test('backchannel_logout_uri: https, no fragment; http only on loopback and only outside production', async (t) => {
  const policy = clientMetadataPolicy(testConfig(handshakeEnv()));
  const base = { name: 'RP', redirect_uris: [REDIRECT_URI] };
  const ok = validateClientMetadata(
    { ...base, backchannel_logout_uri: 'https://rp.example.com/bcl', backchannel_logout_session_required: true },
    policy,
  );
  t.equal(ok.backchannel_logout_uri, 'https://rp.example.com/bcl');
  t.equal(ok.backchannel_logout_session_required, true);
  t.equal(
    validateClientMetadata({ ...base, backchannel_logout_uri: 'http://127.0.0.1:9/bcl' }, policy)
      .backchannel_logout_uri,
    'http://127.0.0.1:9/bcl',
  );
  const refused = (input: Record<string, unknown>, p = policy): string => {
    try {
      validateClientMetadata({ ...base, ...input }, p);
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };
  t.match(refused({ backchannel_logout_uri: 'https://rp.example.com/bcl#x' }), /backchannel_logout_uri: .*fragment/);
  t.match(
    refused({ backchannel_logout_uri: 'http://rp.example.com/bcl' }),
    /backchannel_logout_uri: must be an https URL/,
  );
  t.match(refused({ backchannel_logout_uri: 'bcl' }), /backchannel_logout_uri: must be an absolute URI/);
  t.match(
    refused({ backchannel_logout_session_required: 'yes' }),
    /backchannel_logout_session_required: must be true or false/,
  );
  const production = { ...policy, backchannelHttpLoopback: false };
  t.match(
    refused({ backchannel_logout_uri: 'http://127.0.0.1:9/bcl' }, production),
    /http on a loopback host is allowed only outside production/,
  );
});

t.test('dynamic registration takes and returns the back-channel logout metadata', async (t) => {
  const { app } = await logoutApp(t, { DCR_ENABLED: 'true' });
  const res = await app.inject({
    method: 'POST',
    url: '/register',
    payload: {
      redirect_uris: [REDIRECT_URI],
      backchannel_logout_uri: 'https://rp.example.com/bcl',
      backchannel_logout_session_required: true,
    },
  });
  t.equal(res.statusCode, 201, res.body);
  t.equal(res.json().backchannel_logout_uri, 'https://rp.example.com/bcl');
  t.equal(res.json().backchannel_logout_session_required, true);
  const bad = await app.inject({
    method: 'POST',
    url: '/register',
    payload: { redirect_uris: [REDIRECT_URI], backchannel_logout_uri: 'http://rp.example.com/bcl' },
  });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().error, 'invalid_client_metadata');
});

t.test(
  'RP-initiated logout: openid-client buildEndSessionUrl with id_token_hint, a registered URI and state',
  async (t) => {
    const { app } = await logoutApp(t);
    const rp = await testRp(t);
    const { client, cookie, sid, idToken: hint } = await oidcSignIn(app, 'alice', { backchannel_logout_uri: rp.uri });
    t.equal(decodeJwt(hint).sid, sid, 'the ID token names the session');

    const metadata = (await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
    const config = new oidc.Configuration(metadata as oidc.ServerMetadata, client.client_id);
    const url = oidc.buildEndSessionUrl(config, {
      id_token_hint: hint,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: 'st-42',
    });
    t.equal(url.origin + url.pathname, `${ISSUER}/sign-out`);

    // A navigation from the RP's site: cross-site, yet the hint names this browser's session, so no question.
    const res = await app.inject({
      method: 'GET',
      url: `${url.pathname}${url.search}`,
      headers: { 'sec-fetch-site': 'cross-site' },
      cookies: { [SESSION_COOKIE]: cookie },
    });
    t.equal(res.statusCode, 303, res.body);
    t.equal(res.headers.location, `${POST_LOGOUT_URI}?state=st-42`);
    t.equal(res.cookies.find((c) => c.name === SESSION_COOKIE)?.value, '', 'the cookie is cleared');
    t.equal(await liveSessions(app, 'alice'), 0, 'the session is revoked');

    await app.logoutDeliveries.idle();
    t.equal(rp.received.length, 1, 'the RP got a logout token on its back channel');
    t.equal(rp.received[0]!.contentType, 'application/x-www-form-urlencoded');
    const { payload, protectedHeader } = await validateLogoutToken(
      app,
      rp.received[0]!.form.get('logout_token')!,
      client.client_id,
    );
    t.equal(protectedHeader.typ, 'logout+jwt');
    t.same(payload.events, { [BACKCHANNEL_EVENT]: {} });
    t.equal(payload.sub, 'alice');
    t.equal(payload.sid, sid, 'the ended session, as in the ID token');
    t.notOk('nonce' in payload, 'Back-Channel Logout §2.4: never a nonce');
    t.ok(payload.exp! - payload.iat! <= 120, 'a short-lived token');
    t.same(await outbox(app, client.client_id), [], 'delivered and gone from the outbox');
  },
);

t.test(
  'an expired id_token_hint from a recent session still works; a self-registered client is fine with a hint',
  async (t) => {
    const { app, clock } = await logoutApp(t);
    const { client, cookie, idToken: issued } = await oidcSignIn(app, 'bob');
    const now = Math.floor(Date.now() / 1000);
    // Two hours later the ID token has expired; the session (idle and absolute lifetimes) has not.
    clock.now = new Date(Date.now() + 2 * 3600_000);
    t.ok(decodeJwt(issued).exp! < Math.floor(clock.now.getTime() / 1000), 'the hint has expired');
    const res = await signOutGet(app, { id_token_hint: issued, post_logout_redirect_uri: POST_LOGOUT_URI }, cookie);
    t.equal(res.statusCode, 303, res.body);
    t.equal(res.headers.location, POST_LOGOUT_URI);
    t.equal(await liveSessions(app, 'bob'), 0);

    // As if it had registered itself (set before anything reads and caches it): with a hint its
    // registered post-logout URI is followed; without one it would not be.
    const registered = await rpClient(app);
    await app.database.db
      .updateTable('clients')
      .set({ source: 'registration' })
      .where('client_id', '=', registered.client_id)
      .execute();
    const withHint = await signOutGet(
      app,
      {
        id_token_hint: await idToken(app, { sub: 'bob', aud: registered.client_id }),
        post_logout_redirect_uri: POST_LOGOUT_URI,
        state: 'x',
      },
      undefined,
      'same-site',
    );
    t.equal(withHint.statusCode, 303, 'a valid hint proves the client asked');
    t.equal(withHint.headers.location, `${POST_LOGOUT_URI}?state=x`);
    const noHint = await signOutGet(
      app,
      { client_id: registered.client_id, post_logout_redirect_uri: POST_LOGOUT_URI },
      undefined,
      'same-site',
    );
    t.equal(noHint.statusCode, 200, 'without a hint a self-registered client gets no redirect');
    t.match(noHint.body, /You are signed out/);

    const ancient = await idToken(app, {
      sub: 'bob',
      aud: client.client_id,
      iat: now - 30 * 86400,
      exp: now - 30 * 86400 + 300,
    });
    const old = await signOutGet(app, { id_token_hint: ancient }, undefined, 'same-site');
    t.equal(old.statusCode, 400, 'older than any session could be');
    t.equal(errorDescription(old), shown('id_token_hint is older than any session could be'));
  },
);

t.test('RP-initiated logout refusals: error pages, never a redirect, never a 500', async (t) => {
  const { app } = await logoutApp(t);
  const { client, cookie, sid, idToken: hint } = await oidcSignIn(app, 'carol');
  const other = await rpClient(app, { post_logout_redirect_uris: ['https://other.example.com/bye'] });

  const unregistered = await signOutGet(
    app,
    { id_token_hint: hint, post_logout_redirect_uri: 'https://other.example.com/bye', state: 's' },
    cookie,
  );
  t.equal(unregistered.statusCode, 200, 'another client’s URI is not this client’s: the signed-out page');
  t.notOk(unregistered.headers.location);
  t.match(unregistered.body, /You are signed out/);
  t.equal(await liveSessions(app, 'carol'), 0, 'the sign-out itself still happened');

  const foreign = await generateKeyPair('ES256');
  const forged = await new SignJWT({ sid })
    .setProtectedHeader({ alg: 'ES256', kid: app.keys.current().kid, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject('carol')
    .setAudience(client.client_id)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(foreign.privateKey);
  const signer = app.keys.current();
  const accessToken = await issueAccessToken(signer, {
    issuer: ISSUER,
    subject: 'carol',
    clientId: client.client_id,
    audience: ['https://api.example.com'],
    scopes: ['read'],
    ttlSeconds: 300,
    now: Math.floor(Date.now() / 1000),
  });
  const cases: Array<[string, Record<string, string>, string]> = [
    [
      'a hint signed by a key that is not Gatehouse’s',
      { id_token_hint: forged },
      'id_token_hint is not an ID token this server signed',
    ],
    [
      'an access token is not an ID token (RFC 8725 §3.11)',
      { id_token_hint: accessToken.token },
      'id_token_hint is not an ID token',
    ],
    ['not a JWT', { id_token_hint: 'abc' }, 'id_token_hint is not a valid signed JWT'],
    [
      'another issuer',
      {
        id_token_hint: await new SignJWT({})
          .setProtectedHeader({ alg: signer.alg, kid: signer.kid })
          .setIssuer('https://evil.example')
          .setSubject('carol')
          .setAudience(client.client_id)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(signer.key),
      },
      'id_token_hint was not issued by this server',
    ],
    [
      'client_id is not the hint’s client',
      { id_token_hint: hint, client_id: other.client_id },
      'client_id is not the client the id_token_hint was issued to',
    ],
  ];
  for (const [what, params, description] of cases) {
    const res = await signOutGet(app, { ...params, post_logout_redirect_uri: POST_LOGOUT_URI }, undefined, 'same-site');
    t.equal(res.statusCode, 400, what);
    t.match(res.headers['content-type'], /^text\/html/, what);
    t.notOk(res.headers.location, `${what}: no redirect`);
    t.equal(errorDescription(res), shown(description), what);
  }
  const repeated = await app.inject({ method: 'GET', url: `/sign-out?id_token_hint=${hint}&id_token_hint=${hint}` });
  t.equal(repeated.statusCode, 400, 'repeated parameter');
  t.equal(errorDescription(repeated), shown('parameter id_token_hint is repeated'));
  const tooLong = await signOutGet(app, { id_token_hint: 'a'.repeat(9000) }, undefined, 'same-site');
  t.equal(tooLong.statusCode, 400, 'an oversized hint');
  t.match(tooLong.headers['content-type'], /^text\/html/);
  const badPost = await app.inject({
    method: 'POST',
    url: '/sign-out',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'id_token_hint=&ui_locales=fr',
  });
  t.equal(badPost.statusCode, 400, 'an empty hint in a form');
});

t.test(
  'logout CSRF: a cross-site request without a matching hint is asked first, and the question carries the hint',
  async (t) => {
    const { app } = await logoutApp(t);
    const client = await rpClient(app);
    const { cookie } = await signIn(app, client, 'dave');
    const someoneElse = await idToken(app, { sub: 'erin', aud: client.client_id });
    const asked = await signOutGet(
      app,
      { id_token_hint: someoneElse, post_logout_redirect_uri: POST_LOGOUT_URI, ui_locales: 'fr', logout_hint: 'erin' },
      cookie,
    );
    t.equal(asked.statusCode, 200);
    t.match(asked.body, /<html lang="fr">/, 'ui_locales=fr: the question in French (OIDC Core §3.1.2.1)');
    t.match(asked.body, /<h1>Se déconnecter\s\?<\/h1>/u);
    t.match(asked.body, /name="id_token_hint"/);
    t.match(asked.body, /name="logout_hint" value="erin"/);
    t.equal(await liveSessions(app, 'dave'), 1, 'nothing ended yet');
    const confirmed = await app.inject({
      method: 'POST',
      url: '/sign-out',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      cookies: { [SESSION_COOKIE]: cookie },
      payload: new URLSearchParams({
        id_token_hint: someoneElse,
        post_logout_redirect_uri: POST_LOGOUT_URI,
      }).toString(),
    });
    t.equal(confirmed.statusCode, 303);
    t.equal(confirmed.headers.location, POST_LOGOUT_URI);
    t.equal(await liveSessions(app, 'dave'), 0);
  },
);

t.test('back-channel delivery is retried after the RP answers 500, from the outbox', async (t) => {
  const { app, clock } = await logoutApp(t);
  const rp = await testRp(t, [500]);
  const client = await rpClient(app, { backchannel_logout_uri: rp.uri, backchannel_logout_session_required: true });
  const { cookie, sid } = await signIn(app, client, 'frank');
  const res = await signOutGet(app, {}, cookie, 'same-site');
  t.equal(res.statusCode, 200);
  await app.logoutDeliveries.idle();
  t.equal(rp.received.length, 1, 'first attempt');
  const [row] = await outbox(app, client.client_id);
  t.equal(row?.attempts, 1);
  t.equal(row?.last_error, 'the client answered 500');
  t.equal(row?.sid, sid);
  t.equal(row!.next_attempt_at.getTime(), clock.now.getTime() + 30_000, 'BACKCHANNEL_LOGOUT_RETRY_SECONDS later');

  t.same(await app.logoutDeliveries.deliverDue(), { delivered: 0, retrying: 0, dropped: 0 }, 'not due yet');
  clock.now = new Date(clock.now.getTime() + 31_000);
  t.same(await app.logoutDeliveries.deliverDue(), { delivered: 1, retrying: 0, dropped: 0 });
  t.equal(rp.received.length, 2, 'the retry reached the RP');
  const first = rp.received[0]!.form.get('logout_token')!;
  const second = rp.received[1]!.form.get('logout_token')!;
  t.not(first, second, 'each attempt is a freshly signed token');
  const { payload } = await validateLogoutToken(app, second, client.client_id);
  t.equal(payload.sid, sid);
  t.same(await outbox(app, client.client_id), []);
});

t.test('a delivery is given up after BACKCHANNEL_LOGOUT_MAX_ATTEMPTS', async (t) => {
  const { app, clock } = await logoutApp(t, {
    BACKCHANNEL_LOGOUT_MAX_ATTEMPTS: '2',
    BACKCHANNEL_LOGOUT_RETRY_SECONDS: '1',
  });
  const rp = await testRp(t, [503, 503, 503]);
  const client = await rpClient(app, { backchannel_logout_uri: rp.uri });
  const { cookie } = await signIn(app, client, 'gina');
  await signOutGet(app, {}, cookie, 'same-site');
  await app.logoutDeliveries.idle();
  clock.now = new Date(clock.now.getTime() + 2_000);
  t.same(await app.logoutDeliveries.deliverDue(), { delivered: 0, retrying: 0, dropped: 1 });
  t.equal(rp.received.length, 2);
  t.same(await outbox(app, client.client_id), []);
});

t.test('a private address is never POSTed to unless BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES', async (t) => {
  const { app } = await logoutApp(t, { BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES: 'false' });
  const rp = await testRp(t);
  const client = await rpClient(app, { backchannel_logout_uri: rp.uri });
  const { cookie } = await signIn(app, client, 'hank');
  await signOutGet(app, {}, cookie, 'same-site');
  await app.logoutDeliveries.idle();
  t.equal(rp.received.length, 0, 'nothing reached 127.0.0.1');
  const [row] = await outbox(app, client.client_id);
  t.match(row?.last_error, /special-use address \(loopback/);
});

t.test('clients without a backchannel_logout_uri, and sessions that issued them nothing, queue nothing', async (t) => {
  const { app } = await logoutApp(t);
  const client = await rpClient(app);
  const { cookie } = await signIn(app, client, 'ivy');
  await signOutGet(app, {}, cookie, 'same-site');
  t.same(await outbox(app, client.client_id), []);
});

/** A host sign-out message as docs/handshake.md describes it. */
async function hostSignOut(
  claims: Record<string, unknown>,
  options: { secret?: string; typ?: string; iat?: number; exp?: number } = {},
): Promise<string> {
  const iat = options.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: `j-${Math.random().toString(36).slice(2)}`, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: options.typ ?? 'sign-out+jwt' })
    .setIssuer(HOST_ID)
    .setAudience(ISSUER)
    .setIssuedAt(iat)
    .setExpirationTime(options.exp ?? iat + 60)
    .sign(new TextEncoder().encode(options.secret ?? HOST_SECRET));
}

function postHostSignOut(app: FastifyInstance, token: string): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/host/sign-out',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ sign_out: token }).toString(),
  });
}

t.test('the host’s signed sign-out message ends the session and triggers back-channel logout', async (t) => {
  const { app } = await logoutApp(t);
  const rp = await testRp(t);
  const client = await rpClient(app, { backchannel_logout_uri: rp.uri });
  const first = await signIn(app, client, 'jack');
  const second = await signIn(app, client, 'jack');

  const bySid = await hostSignOut({ sub: 'jack', sid: first.sid });
  const res = await postHostSignOut(app, bySid);
  t.equal(res.statusCode, 200, res.body);
  t.same(res.json(), { sessions_ended: 1, logout_tokens: 1 });
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(await app.sessions.current(first.cookie), null);
  t.ok(await app.sessions.current(second.cookie), 'only the named session');
  await app.logoutDeliveries.idle();
  t.equal(rp.received.length, 1);
  t.equal(
    (await validateLogoutToken(app, rp.received[0]!.form.get('logout_token')!, client.client_id)).payload.sid,
    first.sid,
  );

  const replay = await postHostSignOut(app, bySid);
  t.equal(replay.statusCode, 400, 'a replay');
  t.same(replay.json(), {
    error: 'invalid_request',
    error_description: 'this sign_out message has already been used (its jti is accepted once)',
  });

  const everywhere = await postHostSignOut(app, await hostSignOut({ sub: 'jack' }));
  t.same(everywhere.json(), { sessions_ended: 1, logout_tokens: 1 }, 'sub alone: every live session of the user');
  t.equal(await liveSessions(app, 'jack'), 0);
  await app.logoutDeliveries.idle();
  t.equal(rp.received.length, 2);
});

t.test('forged, expired, mistyped and incomplete host sign-out messages are refused', async (t) => {
  const { app } = await logoutApp(t);
  const client = await rpClient(app);
  await signIn(app, client, 'kim');
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, string, string]> = [
    ['forged', await hostSignOut({ sub: 'kim' }, { secret: 'x'.repeat(40) }), 'the sign_out signature does not verify'],
    ['expired', await hostSignOut({ sub: 'kim' }, { iat: now - 600, exp: now - 300 }), 'sign_out has expired'],
    [
      'a login_response is not a sign-out',
      await hostSignOut({ sub: 'kim' }, { typ: 'login-response+jwt' }),
      "sign_out must have the JWT header typ 'sign-out+jwt' (RFC 8725 section 3.11)",
    ],
    ['nobody named', await hostSignOut({}), 'sign_out must name sub, sid or both'],
    [
      'no jti',
      await hostSignOut({ sub: 'kim', jti: undefined }),
      'sign_out must have a jti of 1 to 255 characters (it is accepted once)',
    ],
    [
      'too long-lived',
      await hostSignOut({ sub: 'kim' }, { exp: now + 3600 }),
      'sign_out must expire within 300 seconds of iat',
    ],
    ['not a JWT', 'a.b.c', 'sign_out is not a valid signed JWT (RFC 7515 compact serialization)'],
  ];
  for (const [what, token, description] of cases) {
    const res = await postHostSignOut(app, token);
    t.equal(res.statusCode, 400, what);
    t.same(res.json(), { error: 'invalid_request', error_description: description }, what);
  }
  t.equal(await liveSessions(app, 'kim'), 1, 'no refused message ended anything');
  const notForm = await app.inject({ method: 'POST', url: '/host/sign-out', payload: { sign_out: 'x' } });
  t.equal(notForm.statusCode, 415);
});

t.test('an admin ending a user’s sessions, or revoking the user, triggers back-channel logout', async (t) => {
  const adminToken = randomBytes(32).toString('base64url');
  const { app } = await logoutApp(t, { ADMIN_PORT: '4999', ADMIN_TOKEN: adminToken });
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  const auth = { authorization: `Bearer ${adminToken}` };
  const rp = await testRp(t);
  const client = await rpClient(app, { backchannel_logout_uri: rp.uri });
  await signIn(app, client, 'leo');
  await signIn(app, client, 'leo');
  const ended = await admin.inject({ method: 'DELETE', url: '/admin/users/leo/sessions', headers: auth });
  t.equal(ended.statusCode, 200);
  t.same(ended.json(), { sub: 'leo', sessions: 2, logout_tokens: 2 });
  t.equal(await liveSessions(app, 'leo'), 0);
  await signIn(app, client, 'mia');
  const revoked = await admin.inject({ method: 'DELETE', url: '/admin/users/mia/grants', headers: auth });
  t.equal(revoked.json().revoked.sessions, 1);
  await app.logoutDeliveries.idle();
  await app.logoutDeliveries.deliverDue();
  t.same(await outbox(app, client.client_id), [], 'all delivered');
  const subs = await Promise.all(
    rp.received.map(
      async (r) => (await validateLogoutToken(app, r.form.get('logout_token')!, client.client_id)).payload.sub,
    ),
  );
  t.same(subs.sort(), ['leo', 'leo', 'mia']);
});

t.test(
  'ending a session revokes its online OpenID Connect refresh chains, not offline or plain OAuth ones',
  async (t) => {
    const { app } = await logoutApp(t, {
      SCOPES: '{"read":"Read your data","openid":"Sign you in","offline_access":"Stay connected"}',
    });
    const { client, secret } = await app.clientAdmin.create({
      name: 'OIDC RP',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      scopes: ['read', 'openid', 'offline_access'],
      skip_consent: true,
    });
    const { cookie, sid } = await signIn(app, client, 'nora');
    /** A code of this session, as #issueCode stores it, redeemed at /token: the chain's family. */
    const chainFor = async (scopes: string[]): Promise<string> => {
      const { verifier, challenge } = pkce();
      const code = generateToken();
      await createAuthorizationCode(app.database.db, {
        code_hash: hashSecret(code),
        client_id: client.client_id,
        redirect_uri: REDIRECT_URI,
        redirect_uri_given: true,
        code_challenge: challenge,
        scopes,
        resources: ['https://api.example.com'],
        sub: 'nora',
        auth_time: new Date(),
        sid,
        expires_at: new Date(Date.now() + 60_000),
        consumed_at: null,
        family_id: null,
      });
      const res = await redeemCode(app, client.client_id, secret!, code, verifier);
      if (res.statusCode !== 200) throw new Error(res.body);
      const row = await app.database.db
        .selectFrom('authorization_codes')
        .select('family_id')
        .where('code_hash', '=', hashSecret(code))
        .executeTakeFirstOrThrow();
      return row.family_id!;
    };
    const online = await chainFor(['openid', 'read']);
    const offline = await chainFor(['openid', 'offline_access', 'read']);
    const plain = await chainFor(['read']);
    await signOutGet(app, {}, cookie, 'same-site');
    const revokedOf = async (family: string) =>
      (
        await app.database.db
          .selectFrom('refresh_tokens')
          .select('revoked_at')
          .where('family_id', '=', family)
          .executeTakeFirstOrThrow()
      ).revoked_at !== null;
    t.equal(await revokedOf(online), true, 'Back-Channel Logout §2.7: issued without offline_access, revoked');
    t.equal(await revokedOf(offline), false, 'offline_access: kept');
    t.equal(await revokedOf(plain), false, 'a plain OAuth grant outlives the browser session');
  },
);

t.test('two replicas working the outbox at once deliver each logout token once (FOR UPDATE SKIP LOCKED)', async (t) => {
  const { app } = await logoutApp(t);
  const rp = await testRp(t);
  const client = await rpClient(app, { backchannel_logout_uri: rp.uri });
  for (let i = 0; i < 6; i++) await signIn(app, client, 'olga');
  t.same(await app.userGrants.endSessions('olga'), { sessions: 6, logout_tokens: 6 });
  // A second replica: its own worker on the same database.
  const other = new LogoutDeliveries({
    db: app.database.db,
    config: app.config,
    clients: app.clients,
    signer: () => app.keys.current(),
    clock: app.clock,
    log: app.log,
  });
  const [a, b] = await Promise.all([app.logoutDeliveries.deliverDue(), other.deliverDue()]);
  t.equal(a.delivered + b.delivered, 6, 'every row delivered by exactly one of them');
  t.equal(rp.received.length, 6, 'and the RP got each once');
  const sids = new Set(
    await Promise.all(
      rp.received.map(
        async (r) => (await validateLogoutToken(app, r.form.get('logout_token')!, client.client_id)).payload.sid,
      ),
    ),
  );
  t.equal(sids.size, 6, 'one token per ended session');
});
