import type { FastifyInstance } from 'fastify';
import { createHash, randomUUID } from 'node:crypto';
import { type CryptoKey, SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import { issueAccessToken } from '../../src/oauth/tokens/access-token.js';
import { userinfoEndpoint } from '../../src/oauth/tokens/id-token.js';
import { loadConfig } from '../../src/config/index.js';
import { answerLoginRequest, HANDSHAKE_ENV, parseLoginRequest } from '../fixtures/host.js';
import { Browser, pathOf, pkce, register } from '../fixtures/registration.js';
import { basic } from '../fixtures/clients.js';
import { buildTestApp, testEnv } from '../helper.js';
import { ISSUER } from '../kit/issuer.js';

/**
 * OpenID Connect at the edges the interop tests (openid-client, oauth4webapi) do not reach: what is
 * refused and how precisely, what the host is told, what the consent page says, and /userinfo's RFC 6750
 * answers. docs/openid-connect.md is the behaviour.
 */

const ENV = {
  ...HANDSHAKE_ENV,
  DCR_ENABLED: 'true',
  SCOPES: '{"read":"Read your data"}',
  RESOURCES: 'https://api.example.com',
  CLAIMS: '{"team":{"description":"your <b>team</b> & role","claims":["team","role"]}}',
};
const REDIRECT = 'https://rp.example.com/cb';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function operatorClient(app: FastifyInstance, overrides: Record<string, unknown> = {}) {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Operator RP',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...overrides,
  });
  return { clientId: client.client_id, secret: secret! };
}

function authorizeUrl(clientId: string, challenge: string, extra: Record<string, string> = {}) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'openid',
    state: 'st',
    ...extra,
  });
  return `/authorize?${q}`;
}

/** authorize → host sign-in (with `answer`) → consent (allow) when shown: the code. */
async function codeFor(
  browser: Browser,
  url: string,
  answer: Record<string, unknown> = { sub: 'alice' },
): Promise<{ code: string; consentPage: string | null }> {
  const start = await browser.get(url);
  let location = String(start.headers.location);
  if (location.startsWith('https://host.example.com/')) {
    const complete = await browser.get(await answerLoginRequest(location, answer));
    location = String(complete.headers.location);
  }
  let consentPage: string | null = null;
  if (location.includes('/consent?request=')) {
    const page = await browser.get(pathOf(location));
    consentPage = page.body;
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const request = new URL(location, ISSUER).searchParams.get('request')!;
    const allowed = await browser.postForm('/consent', { request, csrf, decision: 'allow' });
    location = String(allowed.headers.location);
  }
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`no code: ${location}`);
  return { code, consentPage };
}

async function redeem(app: FastifyInstance, clientId: string, secret: string, code: string, verifier: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(clientId, secret) },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    }).toString(),
  });
  if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`);
  return res.json<{ access_token: string; id_token?: string; refresh_token?: string; scope?: string }>();
}

function redirectedError(res: { statusCode: number; headers: Record<string, unknown> }) {
  const url = new URL(String(res.headers.location));
  return { error: url.searchParams.get('error'), description: url.searchParams.get('error_description') };
}

t.test('authorization requests Gatehouse refuses, each with a precise redirected error', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId } = await operatorClient(app);
  const browser = new Browser(app);
  const { challenge } = pkce();
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['nonce too long', { nonce: 'n'.repeat(256) }, /nonce must be at most 255 characters/],
    ['nonce with a control character', { nonce: 'a\tb' }, /nonce/],
    ['claims not JSON', { claims: '{"userinfo":' }, /claims must be a JSON object/],
    ['claims an array', { claims: '[]' }, /claims must be a JSON object/],
    ['claims with an unknown member', { claims: '{"access_token":{}}' }, /unknown member 'access_token'/],
    ['claims member not an object', { claims: '{"userinfo":["email"]}' }, /member userinfo must be an object/],
    ['claims request not null or object', { claims: '{"id_token":{"email":true}}' }, /id_token\.email must be null/],
    ['prompt=none with another value', { prompt: 'none consent' }, /prompt=none cannot be combined/],
    ['id_token_hint not a JWT', { id_token_hint: 'not-a-token' }, /id_token_hint is not a valid signed JWT/],
  ];
  for (const [name, extra, description] of cases) {
    const res = await browser.get(authorizeUrl(clientId, challenge, extra));
    t.equal(res.statusCode, 303, name);
    const { error, description: said } = redirectedError(res);
    t.equal(error, 'invalid_request', name);
    t.match(said, description, name);
  }
  // A well-formed claims request is ignored (OIDC Core §5.5: claims_parameter_supported is false).
  const ok = await browser.get(authorizeUrl(clientId, challenge, { claims: '{"userinfo":{"email":null}}' }));
  t.match(ok.headers.location, /^https:\/\/host\.example\.com\/login\?/, 'a well-formed claims request goes on');
});

t.test('the host is told the hints; select_account and acr_values do not reuse the session', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId, secret } = await operatorClient(app);
  const browser = new Browser(app);
  const first = pkce();
  const { code } = await codeFor(browser, authorizeUrl(clientId, first.challenge), {
    sub: 'alice',
    acr: 'urn:example:pwd',
  });
  const tokens = await redeem(app, clientId, secret, code, first.verifier);
  const { challenge } = pkce();

  const start = await browser.get(
    authorizeUrl(clientId, challenge, {
      prompt: 'select_account consent',
      login_hint: 'alice@example.com',
      ui_locales: 'fr en',
      acr_values: 'urn:example:mfa urn:example:pwd',
      id_token_hint: tokens.id_token!,
    }),
  );
  t.match(start.headers.location, /^https:\/\/host\.example\.com\/login\?/, 'select_account: the host chooses');
  const { payload } = parseLoginRequest(start.headers.location);
  t.match(payload, {
    prompt: 'select_account consent',
    login_hint: 'alice@example.com',
    ui_locales: 'fr en',
    acr_values: 'urn:example:mfa urn:example:pwd',
    id_token_hint_sub: 'alice',
  });

  // acr_values the session's acr is not among: the host is asked (it may step up), not the session reused.
  const step = await browser.get(authorizeUrl(clientId, challenge, { acr_values: 'urn:example:mfa' }));
  t.match(step.headers.location, /^https:\/\/host\.example\.com\/login\?/, 'acr not met: to the host');
  const met = await browser.get(authorizeUrl(clientId, challenge, { acr_values: 'urn:example:pwd' }));
  t.match(met.headers.location, /^https:\/\/rp\.example\.com\/cb\?code=/, 'acr met: the session answers');

  // prompt=none and an acr the session does not have: login_required.
  const none = await browser.get(authorizeUrl(clientId, challenge, { prompt: 'none', acr_values: 'urn:example:mfa' }));
  t.equal(redirectedError(none).error, 'login_required');

  // An ID token issued to another client is not a hint for this one.
  const other = await operatorClient(app);
  const foreign = await browser.get(authorizeUrl(other.clientId, challenge, { id_token_hint: tokens.id_token! }));
  t.match(redirectedError(foreign), { error: 'invalid_request', description: /not issued to this client/ });
  // An access token is signed by the same key but is not an ID token.
  const access = await browser.get(authorizeUrl(clientId, challenge, { id_token_hint: tokens.access_token }));
  t.match(redirectedError(access), { error: 'invalid_request', description: /not an ID token/ });
});

t.test('ID token contents, identity-only access token audience, consent page lines', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId, secret } = await operatorClient(app);
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();
  const { code, consentPage } = await codeFor(
    browser,
    authorizeUrl(clientId, challenge, { scope: 'openid email team', nonce: 'n-0S6_WzA2Mj' }),
    { sub: 'alice', claims: { email: 'alice@example.com', team: 'Blue', role: 'lead', salary: 1 }, amr: ['pwd'] },
  );
  t.match(consentPage, /It will see/);
  t.match(consentPage, /your email address/);
  t.match(consentPage, /your &lt;b&gt;team&lt;\/b&gt; &amp; role/, 'the operator’s description, escaped');
  t.notMatch(consentPage, /It will be able to/, 'no access scopes: that section is left out');

  const tokens = await redeem(app, clientId, secret, code, verifier);
  t.equal(tokens.scope, 'openid email team');
  const header = decodeProtectedHeader(tokens.id_token!);
  t.equal(header.alg, 'ES256');
  t.notOk('typ' in header, 'an ID token has no typ (it is not an access token)');
  const id = decodeJwt(tokens.id_token!);
  t.match(id, { iss: ISSUER, sub: 'alice', aud: clientId, azp: clientId, nonce: 'n-0S6_WzA2Mj', amr: ['pwd'] });
  t.type(id.auth_time, 'number');
  const access = decodeJwt(tokens.access_token);
  t.equal(access.aud, `${ISSUER}/userinfo`, 'identity only: the access token is for /userinfo, no resource');

  const info = await app.inject({
    method: 'GET',
    url: '/userinfo',
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  t.equal(info.statusCode, 200);
  t.equal(info.headers['cache-control'], 'no-store');
  t.same(info.json(), { sub: 'alice', email: 'alice@example.com', team: 'Blue', role: 'lead' }, 'never salary');

  // openid beside an API scope: the resource and /userinfo are both the audience.
  const both = pkce();
  const { code: code2 } = await codeFor(browser, authorizeUrl(clientId, both.challenge, { scope: 'openid read' }));
  const mixed = await redeem(app, clientId, secret, code2, both.verifier);
  t.same(decodeJwt(mixed.access_token).aud, ['https://api.example.com', `${ISSUER}/userinfo`]);
});

t.test('/userinfo: RFC 6750 answers, POST form body, CORS, revoked grants', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId, secret } = await operatorClient(app, { grant_types: ['authorization_code', 'client_credentials'] });
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();
  const { code } = await codeFor(browser, authorizeUrl(clientId, challenge, { scope: 'openid email' }), {
    sub: 'alice',
    claims: { email: 'a@example.com' },
  });
  const { access_token: token } = await redeem(app, clientId, secret, code, verifier);

  const none = await app.inject({ method: 'GET', url: '/userinfo' });
  t.equal(none.statusCode, 401);
  t.same(
    none.headers['www-authenticate'],
    ['Bearer', 'DPoP algs="ES256 ES384 EdDSA Ed25519 RS256 PS256"'],
    'no credentials: the bare challenges of both accepted schemes (RFC 6750 §3.1, RFC 9449 §7.1)',
  );
  const bad = await app.inject({ method: 'GET', url: '/userinfo', headers: { authorization: 'Bearer abc.def.ghi' } });
  t.equal(bad.statusCode, 401);
  t.match(bad.headers['www-authenticate'], /^Bearer error="invalid_token", error_description="[^"]+"$/);
  const malformed = await app.inject({ method: 'GET', url: '/userinfo', headers: { authorization: 'Bearer a b' } });
  t.equal(malformed.statusCode, 400);
  t.match(malformed.headers['www-authenticate'], /error="invalid_request"/);

  const post = await app.inject({ method: 'POST', url: '/userinfo', headers: FORM, payload: `access_token=${token}` });
  t.equal(post.statusCode, 200, 'RFC 6750 §2.2 form body');
  t.same(post.json(), { sub: 'alice', email: 'a@example.com' });
  const twice = await app.inject({
    method: 'POST',
    url: '/userinfo',
    headers: { ...FORM, authorization: `Bearer ${token}` },
    payload: `access_token=${token}`,
  });
  t.equal(twice.statusCode, 400, 'RFC 6750 §2: one method only');
  const query = await app.inject({ method: 'GET', url: `/userinfo?access_token=${token}` });
  t.equal(query.statusCode, 400, 'never in the URL');

  // A client_credentials token has no openid (and no user): insufficient_scope.
  const machine = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(clientId, secret) },
    payload: 'grant_type=client_credentials&scope=read',
  });
  const refused = await app.inject({
    method: 'GET',
    url: '/userinfo',
    headers: { authorization: `Bearer ${machine.json().access_token}` },
  });
  t.equal(refused.statusCode, 403);
  t.match(refused.headers['www-authenticate'], /error="insufficient_scope".*scope="openid"/);
  // client_credentials cannot ask for openid.
  const openidMachine = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(clientId, secret) },
    payload: 'grant_type=client_credentials&scope=openid',
  });
  t.equal(openidMachine.json().error, 'invalid_scope');

  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/userinfo',
    headers: { origin: 'https://spa.example.com', 'access-control-request-method': 'GET' },
  });
  t.equal(preflight.statusCode, 204);
  t.equal(preflight.headers['access-control-allow-origin'], '*');
  const cors = await app.inject({
    method: 'GET',
    url: '/userinfo',
    headers: { origin: 'https://spa.example.com', authorization: `Bearer ${token}` },
  });
  t.equal(cors.headers['access-control-allow-origin'], '*');

  // The user's grants revoked: the token no longer reads /userinfo.
  await app.userGrants.revoke('alice', { clientId });
  const revoked = await app.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
  t.equal(revoked.statusCode, 401);
  const keptFor = async () =>
    (await app.database.db.selectFrom('granted_claims').selectAll().where('client_id', '=', clientId).execute()).length;
  t.equal(await keptFor(), 0, 'the claims kept for /userinfo went with the grant');
  // Deleting a client takes what was kept for it too.
  const again = pkce();
  const { code: code2 } = await codeFor(browser, authorizeUrl(clientId, again.challenge, { scope: 'openid email' }), {
    sub: 'alice',
    claims: { email: 'a@example.com' },
  });
  t.ok(code2);
  t.equal(await keptFor(), 1, 'a new sign-in keeps them again');
  await app.clientAdmin.delete(clientId);
  t.equal(await keptFor(), 0, 'deleting the client deletes them');
});

t.test('/userinfo refuses a DPoP-bound access token presented as a bearer token (RFC 9449 §7.2)', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId, secret } = await operatorClient(app, { grant_types: ['authorization_code'] });
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();
  const { code } = await codeFor(browser, authorizeUrl(clientId, challenge, { scope: 'openid email' }), {
    sub: 'alice',
    claims: { email: 'a@example.com' },
  });
  await redeem(app, clientId, secret, code, verifier);
  // The same claims Gatehouse puts in a token for /userinfo, once unbound and once bound to a key.
  const mint = async (jkt?: string) =>
    (
      await issueAccessToken(app.keys.current(), {
        issuer: app.config.issuer,
        subject: 'alice',
        clientId,
        audience: [userinfoEndpoint(app.config.issuer)],
        scopes: ['openid', 'email'],
        ttlSeconds: 300,
        authTime: Math.floor(Date.now() / 1000) - 10,
        now: Math.floor(Date.now() / 1000),
        ...(jkt ? { jkt } : {}),
      })
    ).token;
  const get = async (token: string) =>
    app.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
  t.equal((await get(await mint())).statusCode, 200, 'the unbound token is answered');
  const bound = await get(await mint('A'.repeat(43)));
  t.equal(bound.statusCode, 401);
  t.match(bound.headers['www-authenticate'], /^Bearer error="invalid_token"/);
});

/** A DPoP proof (RFC 9449 §4.2) by `key` for `method url`, naming `accessToken` in ath when given. */
async function dpopProof(
  key: { privateKey: CryptoKey; publicKey: CryptoKey },
  method: string,
  url: string,
  accessToken?: string,
  claims: Record<string, unknown> = {},
) {
  const ath = accessToken === undefined ? {} : { ath: createHash('sha256').update(accessToken).digest('base64url') };
  return new SignJWT({ htm: method, htu: url, jti: randomUUID(), ...ath, ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
    .setIssuedAt()
    .sign(key.privateKey);
}

t.test('/userinfo under the DPoP scheme: the bound token with a proof by its key (RFC 9449 §7.1)', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId, secret } = await operatorClient(app, { grant_types: ['authorization_code'] });
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();
  const { code } = await codeFor(browser, authorizeUrl(clientId, challenge, { scope: 'openid email' }), {
    sub: 'alice',
    claims: { email: 'a@example.com' },
  });
  const key = await generateKeyPair('ES256');
  const exchanged = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(clientId, secret), dpop: await dpopProof(key, 'POST', `${ISSUER}/token`) },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    }).toString(),
  });
  t.equal(exchanged.statusCode, 200, exchanged.body);
  const { access_token: token, token_type: type } = exchanged.json<{ access_token: string; token_type: string }>();
  t.equal(type, 'DPoP');
  const userinfo = `${ISSUER}/userinfo`;
  const ask = async (authorization: string, proof?: string, method: 'GET' | 'POST' = 'GET') =>
    app.inject({ method, url: '/userinfo', headers: { authorization, ...(proof ? { dpop: proof } : {}) } });

  const ok = await ask(`DPoP ${token}`, await dpopProof(key, 'GET', userinfo, token));
  t.equal(ok.statusCode, 200, ok.body);
  t.same(ok.json(), { sub: 'alice', email: 'a@example.com' });
  const post = await ask(`DPoP ${token}`, await dpopProof(key, 'POST', userinfo, token), 'POST');
  t.equal(post.statusCode, 200, 'POST with a proof for POST');

  const refusals: Array<[string, Promise<string | undefined>, string, string?]> = [
    ['no proof', Promise.resolve(undefined), 'invalid_dpop_proof'],
    ['a proof without ath', dpopProof(key, 'GET', userinfo), 'invalid_dpop_proof'],
    ['a proof naming another token', dpopProof(key, 'GET', userinfo, `${token}x`), 'invalid_dpop_proof'],
    ['a proof for the token endpoint', dpopProof(key, 'GET', `${ISSUER}/token`, token), 'invalid_dpop_proof'],
    ['a proof for POST on a GET', dpopProof(key, 'POST', userinfo, token), 'invalid_dpop_proof'],
    [
      'a proof by another key',
      generateKeyPair('ES256').then((k) => dpopProof(k, 'GET', userinfo, token)),
      'invalid_token',
    ],
  ];
  for (const [label, proof, error] of refusals) {
    const res = await ask(`DPoP ${token}`, await proof);
    t.equal(res.statusCode, 401, label);
    t.equal(res.json().error, error, label);
    t.match(
      res.headers['www-authenticate'],
      new RegExp(`^DPoP algs="[^"]+", error="${error}"`),
      `${label}: a DPoP challenge`,
    );
  }
  const once = await dpopProof(key, 'GET', userinfo, token);
  t.equal((await ask(`DPoP ${token}`, once)).statusCode, 200);
  const replayed = await ask(`DPoP ${token}`, once);
  t.equal(replayed.statusCode, 401, 'a proof is accepted once');
  t.equal(replayed.json().error, 'invalid_dpop_proof');

  t.equal((await ask(`Bearer ${token}`)).statusCode, 401, 'the bound token is no bearer token');
  // An unbound token presented under the DPoP scheme is not bound to the proof's key.
  const second = pkce();
  const { code: unboundCode } = await codeFor(
    browser,
    authorizeUrl(clientId, second.challenge, { scope: 'openid email' }),
    { sub: 'alice', claims: { email: 'a@example.com' } },
  );
  const unbound = (await redeem(app, clientId, secret, unboundCode, second.verifier)).access_token;
  t.equal((await ask(`Bearer ${unbound}`)).statusCode, 200, 'the unbound token works as a bearer token');
  const mismatch = await ask(`DPoP ${unbound}`, await dpopProof(key, 'GET', userinfo, unbound));
  t.equal(mismatch.statusCode, 401);
  t.equal(mismatch.json().error, 'invalid_token', 'an unbound token under the DPoP scheme');
});

t.test('OIDC client metadata: registration, validation and the ID token alg', async (t) => {
  const app = await buildTestApp(t, ENV);
  const ok = await register(app, {
    redirect_uris: [REDIRECT],
    id_token_signed_response_alg: 'ES256',
    default_max_age: 600,
    require_auth_time: true,
    scope: 'openid email read',
  });
  t.equal(ok.statusCode, 201, ok.body);
  t.match(ok.json(), { id_token_signed_response_alg: 'ES256', default_max_age: 600, require_auth_time: true });
  for (const [body, field] of [
    [{ id_token_signed_response_alg: 'RS256' }, 'id_token_signed_response_alg'],
    [{ id_token_signed_response_alg: 'none' }, 'id_token_signed_response_alg'],
    [{ default_max_age: -1 }, 'default_max_age'],
    [{ default_max_age: 1.5 }, 'default_max_age'],
    [{ require_auth_time: 'yes' }, 'require_auth_time'],
  ] as const) {
    const res = await register(app, { redirect_uris: [REDIRECT], ...body });
    t.equal(res.statusCode, 400, field);
    t.equal(res.json().error, 'invalid_client_metadata', field);
    t.match(res.json().error_description, field, field);
  }
});

t.test('CLAIMS and SCOPES: bad identity scopes stop the start, naming the variable', async (t) => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [
      { CLAIMS: '{"email":{"description":"x","claims":["e"]}}' },
      /^CLAIMS: .*"email" is a standard OpenID Connect scope/,
    ],
    [{ CLAIMS: '{"team":{"description":"x","claims":["sub"]}}' }, /^CLAIMS: .*"sub" is a claim Gatehouse sets itself/],
    [{ CLAIMS: '{"team":{"description":"","claims":["t"]}}' }, /^CLAIMS: .*needs a description/],
    [{ CLAIMS: 'team' }, /^CLAIMS: .*"team" is not scope:claim1,claim2/],
    [{ SCOPES: 'read team', CLAIMS: 'team:t' }, /^SCOPES: "team" is an identity scope of CLAIMS/],
  ];
  for (const [env, message] of bad) {
    let problems: string[] = [];
    try {
      loadConfig(testEnv(env));
    } catch (err) {
      problems = (err as { problems: string[] }).problems;
    }
    t.equal(problems.length, 1, JSON.stringify(env));
    t.match(problems[0], message, JSON.stringify(env));
  }
  // openid and the standard scopes in SCOPES (as deployments had them) are tolerated: identity scopes still.
  const tolerated = loadConfig(testEnv({ SCOPES: '{"read":"Read","openid":"Sign you in","email":"Email"}' })).config;
  t.ok(tolerated.policy.scopes.identity.has('openid'));
  const short = loadConfig(testEnv({ CLAIMS: 'team:team,role' })).config;
  t.same(short.policy.scopes.identity.get('team'), { description: 'team, role', claims: ['team', 'role'] });
});
