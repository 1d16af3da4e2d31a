import { SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { CERT_FILE, startDocumentServer } from '../cimd/document-server.js';
import { freePort, INTEROP_ENV } from '../fixtures/listen.js';
import { UserAgent } from '../fixtures/user-agent.js';
import { testConfig, testDatabase } from '../helper.js';
import { clientKey, jwksOf } from '../kit/client-keys.js';

/**
 * private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9) with oauth4webapi, unmodified, as the client:
 * client_credentials with keys registered by value (jwks), the code flow with keys by reference (jwks_uri
 * served by the client's own https server on 127.0.0.1), introspection and revocation with the same
 * authentication, and every refusal a client can meet: each answered 401 invalid_client with nothing of
 * the reason sent (no 500). oauth4webapi's documented `modifyAssertion` option builds the bad assertions.
 *
 * No TLS on Gatehouse here: `allowInsecureRequests` permits the http://127.0.0.1 issuer, nothing else.
 * The client's key server is https with the test CA (CIMD_CA_FILE) on a loopback address, which only
 * CIMD_ALLOW_PRIVATE_ADDRESSES (refused in production) lets Gatehouse fetch from.
 */

const HTTP = { [oauth.allowInsecureRequests]: true } as const;
const FETCH_ENV = {
  CIMD_ALLOW_PRIVATE_ADDRESSES: 'true',
  CIMD_CA_FILE: CERT_FILE,
  CIMD_FETCH_TIMEOUT_MS: '2000',
  RESOURCES: 'https://api.example.com',
  // Every refusal below is a failed client authentication from one address: above the brute-force limit
  // (test/reliability/client-auth-throttle.test.ts), so each is answered for what it is, not with a 429.
  CLIENT_AUTH_MAX_FAILURES: '1000',
};
const FAILED = { error: 'invalid_client', error_description: 'client authentication failed' };

/** Gatehouse listening on 127.0.0.1 with a clock the test can move (`clock.skip(seconds)`). */
async function listen(t: Tap.Test, env: Record<string, string> = {}) {
  let offset = 0;
  const clock = Object.assign(() => new Date(Date.now() + offset), {
    skip: (seconds: number) => {
      offset += seconds * 1000;
    },
  });
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const app = await buildApp(testConfig({ ...INTEROP_ENV, ...FETCH_ENV, ...env, ISSUER: issuer }), {
    database: await testDatabase(),
    clock,
  });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port });
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, HTTP));
  return { app, issuer, as, clock };
}

/** The JSON body of a refusal, and its status. */
async function refusal(res: Response): Promise<{ status: number; body: unknown }> {
  return { status: res.status, body: await res.json() };
}

t.test('discovery advertises private_key_jwt and its algorithms wherever clients authenticate', async (t) => {
  const { as } = await listen(t);
  for (const endpoint of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint'] as const) {
    t.ok(
      (as[`${endpoint}_auth_methods_supported`] as string[]).includes('private_key_jwt'),
      `${endpoint}: private_key_jwt`,
    );
    t.same(
      as[`${endpoint}_auth_signing_alg_values_supported`],
      ['ES256', 'PS256', 'RS256', 'EdDSA', 'Ed25519'],
      endpoint,
    );
  }
});

t.test('client_credentials with keys by value (jwks), and every refusal answered invalid_client', async (t) => {
  const { app, as, issuer } = await listen(t);
  const key = await clientKey('ES256');
  const { client: registered, secret } = await app.clientAdmin.create({
    name: 'Machine with a key',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: jwksOf(key),
    scopes: ['read'],
  });
  t.equal(secret, null, 'a private_key_jwt client gets no secret');
  const client: oauth.Client = { client_id: registered.client_id };
  const auth = (options?: oauth.ModifyAssertionOptions) =>
    oauth.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }, options);
  const grant = (clientAuth: oauth.ClientAuth) =>
    oauth.clientCredentialsGrantRequest(as, client, clientAuth, { scope: 'read' }, HTTP);

  const ok = await oauth.processClientCredentialsResponse(as, client, await grant(auth()));
  t.equal(ok.token_type, 'bearer');
  t.equal(ok.scope, 'read');

  // A replay: the very same request body (assertion included) sent again.
  let captured: URLSearchParams | undefined;
  const first = await oauth.clientCredentialsGrantRequest(
    as,
    client,
    auth(),
    { scope: 'read' },
    {
      ...HTTP,
      [oauth.customFetch]: async (url, init) => {
        captured = new URLSearchParams(String(init.body));
        return fetch(url, init);
      },
    },
  );
  t.equal(first.status, 200);
  const replayed = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: captured,
  });
  t.same(await refusal(replayed), { status: 401, body: FAILED }, 'a replayed assertion is refused (RFC 7523 §3 jti)');
  // A new assertion reusing a jti already seen is the same replay.
  const fixedJti = (jti: string): oauth.ModifyAssertionOptions => ({
    [oauth.modifyAssertion]: (_header, payload) => {
      payload.jti = jti;
    },
  });
  t.equal((await grant(auth(fixedJti('once')))).status, 200);
  t.same(await refusal(await grant(auth(fixedJti('once')))), { status: 401, body: FAILED }, 'a reused jti');

  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, oauth.ModifyAssertionOptions]> = [
    [
      'aud = the token endpoint URL (draft-ietf-oauth-rfc7523bis: the issuer alone)',
      { [oauth.modifyAssertion]: (_h, p) => void (p.aud = `${issuer}/token`) },
    ],
    [
      'aud = [issuer, token endpoint]',
      { [oauth.modifyAssertion]: (_h, p) => void (p.aud = [issuer, `${issuer}/token`]) },
    ],
    ['aud = another server', { [oauth.modifyAssertion]: (_h, p) => void (p.aud = 'https://other.example.com') }],
    [
      'expired',
      {
        [oauth.modifyAssertion]: (_h, p) => {
          p.iat = now - 400;
          p.nbf = now - 400;
          p.exp = now - 120;
        },
      },
    ],
    [
      'exp too far ahead (over CLIENT_ASSERTION_MAX_LIFETIME_SECONDS)',
      { [oauth.modifyAssertion]: (_h, p) => void (p.exp = now + 3600) },
    ],
    ['no jti', { [oauth.modifyAssertion]: (_h, p) => void delete p.jti }],
    ['no exp', { [oauth.modifyAssertion]: (_h, p) => void delete p.exp }],
    ['iss is another client', { [oauth.modifyAssertion]: (_h, p) => void (p.sub = 'someone-else') }],
  ];
  for (const [label, options] of cases) {
    t.same(await refusal(await grant(auth(options))), { status: 401, body: FAILED }, label);
  }

  // Signed by a key the client never registered, under the registered kid.
  const stranger = await clientKey('ES256');
  t.same(
    await refusal(await grant(oauth.PrivateKeyJwt({ key: stranger.privateKey, kid: key.kid }))),
    { status: 401, body: FAILED },
    'wrong key',
  );
  // HS256 keyed with a "secret": symmetric algorithms are never accepted (client_secret_jwt is not offered).
  t.same(
    await refusal(await grant(oauth.ClientSecretJwt('a-secret-the-server-never-had-0123456789'))),
    { status: 401, body: FAILED },
    'alg HS256',
  );
  // alg none: an unsigned JWT.
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${b64({ alg: 'none' })}.${b64({ iss: client.client_id, sub: client.client_id, aud: issuer, jti: 'n1', exp: now + 60, iat: now })}.`;
  const none = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: unsigned,
    }),
  });
  t.same(await refusal(none), { status: 401, body: FAILED }, 'alg none');
  // RS256 signed by a key the client has not registered (an RSA key under the same kid).
  const rsa = await clientKey('RS256');
  const rs256 = await new SignJWT({ jti: 'rs-1' })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(client.client_id)
    .setSubject(client.client_id)
    .setAudience(issuer)
    .setIssuedAt()
    .setExpirationTime('1m')
    .sign(rsa.privateKey);
  const wrongAlg = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: rs256,
    }),
  });
  t.same(await refusal(wrongAlg), { status: 401, body: FAILED }, 'another key type under the registered kid');

  // The method registered is the only one accepted: this client has no secret to send.
  const basic = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:guess`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  t.equal(basic.status, 401, 'client_secret_basic is refused for a private_key_jwt client');
});

t.test('a client that registered one algorithm may use only that one', async (t) => {
  const { app, as } = await listen(t);
  const es = await clientKey('ES256', 'es');
  const ps = await clientKey('PS256', 'ps');
  const { client: registered } = await app.clientAdmin.create({
    name: 'PS256 only',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'PS256',
    jwks: jwksOf(es, ps),
  });
  const client: oauth.Client = { client_id: registered.client_id };
  const grant = (key: typeof es) =>
    oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }),
      {},
      HTTP,
    );
  t.equal((await grant(ps)).status, 200, 'PS256 accepted');
  t.same(await refusal(await grant(es)), { status: 401, body: FAILED }, 'ES256, though its key is registered, refused');
});

t.test('the code flow, introspection and revocation with keys at jwks_uri; a new key is fetched once', async (t) => {
  const { app, as, clock } = await listen(t);
  const keys = await startDocumentServer(t);
  const first = await clientKey('Ed25519', 'first');
  keys.json('/jwks.json', jwksOf(first), { 'content-type': 'application/jwk-set+json' });
  const redirectUri = 'https://client.example.com/cb';
  const { client: registered } = await app.clientAdmin.create({
    name: 'Web app with a key',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: `${keys.origin}/jwks.json`,
    scopes: ['read', 'write'],
  });
  const client: oauth.Client = { client_id: registered.client_id };
  let auth = oauth.PrivateKeyJwt({ key: first.privateKey, kid: first.kid });

  // PAR with private_key_jwt (RFC 9126 §2: the client authenticates as at /token), then the code flow.
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const pushed = await oauth.processPushedAuthorizationResponse(
    as,
    client,
    await oauth.pushedAuthorizationRequest(
      as,
      client,
      auth,
      {
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: 'read write',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      HTTP,
    ),
  );
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('request_uri', pushed.request_uri);
  const callback = await new UserAgent(as.issuer).authorize(url);
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, HTTP),
  );
  t.equal(tokens.scope, 'read write');
  t.type(tokens.refresh_token, 'string');
  t.equal(keys.hits('/jwks.json'), 1, 'the key set was fetched once and cached');

  const introspected = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, tokens.access_token, HTTP),
  );
  t.equal(introspected.active, true, 'introspection authenticates with private_key_jwt');

  // The client rotates: it publishes a new key and signs with it at once. The cached set lacks its kid,
  // so Gatehouse fetches the set again (once), finds it, and accepts.
  const second = await clientKey('ES256', 'second');
  keys.json('/jwks.json', jwksOf(first, second), { 'content-type': 'application/jwk-set+json' });
  clock.skip(11);
  auth = oauth.PrivateKeyJwt({ key: second.privateKey, kid: second.kid });
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, HTTP),
  );
  t.type(refreshed.access_token, 'string', 'the new key authenticates');
  t.equal(keys.hits('/jwks.json'), 2, 'one more fetch for the unknown kid');

  // A kid the client never published costs no fetch within 10 s of the last one (no fetch flood).
  const stranger = await clientKey('ES256', 'made-up');
  const refused = await oauth.clientCredentialsGrantRequest(
    as,
    client,
    oauth.PrivateKeyJwt({ key: stranger.privateKey, kid: stranger.kid }),
    {},
    HTTP,
  );
  t.same(await refusal(refused), { status: 401, body: FAILED });
  t.equal(keys.hits('/jwks.json'), 2, 'no fetch for an unknown kid right after a fetch');

  // Revocation (RFC 7009) authenticates the same way.
  const revoked = await oauth.revocationRequest(as, client, auth, refreshed.refresh_token!, HTTP);
  t.equal(revoked.status, 200);
  const after = await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token!, HTTP);
  t.equal(after.status, 400, 'the revoked refresh token is refused');

  // The key server failing is the client's problem: invalid_client, never 500 or 503.
  keys.route('/jwks.json', (_req, res) => res.writeHead(500).end());
  clock.skip(400);
  const broken = await oauth.clientCredentialsGrantRequest(as, client, auth, {}, HTTP);
  t.same(await refusal(broken), { status: 401, body: FAILED }, 'jwks_uri unreachable: invalid_client');
});

t.test('registration (RFC 7591) takes jwks_uri or jwks for private_key_jwt, and refuses private keys', async (t) => {
  const { as } = await listen(t);
  const key = await clientKey('ES256');
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'Registered with a key',
        redirect_uris: ['https://client.example.com/cb'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: jwksOf(key) as unknown as oauth.JsonObject,
      },
      HTTP,
    ),
  );
  t.equal(registered.token_endpoint_auth_method, 'private_key_jwt');
  t.notOk(registered.client_secret, 'no secret for a private_key_jwt client');
  t.notOk('client_secret_expires_at' in registered, 'no secret, so no secret expiry');
  t.same(registered.jwks, jwksOf(key));
  t.equal(registered.token_endpoint_auth_signing_alg, 'ES256');

  const register = (body: Record<string, unknown>) =>
    fetch(as.registration_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://client.example.com/cb'], ...body }),
    }).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as { error: string; error_description: string },
    }));
  const noKeys = await register({ token_endpoint_auth_method: 'private_key_jwt' });
  t.equal(noKeys.status, 400);
  t.equal(noKeys.body.error, 'invalid_client_metadata');
  t.match(noKeys.body.error_description, /jwks_uri/);
  const both = await register({
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: jwksOf(key),
    jwks_uri: 'https://client.example.com/jwks.json',
  });
  t.match(both.body.error_description, /not both/);
  const leaked = await register({
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [{ ...key.jwk, d: 'private-part' }] },
  });
  t.equal(leaked.body.error, 'invalid_client_metadata');
  t.match(leaked.body.error_description, /must be a public key/);
  const symmetric = await register({
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] },
  });
  t.equal(symmetric.body.error, 'invalid_client_metadata');
  const hs = await register({
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: jwksOf(key),
    token_endpoint_auth_signing_alg: 'HS256',
  });
  t.equal(hs.body.error, 'invalid_client_metadata', 'HS256 is not an algorithm a client may register');
  const plainHttp = await register({
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: 'http://client.example.com/jwks.json',
  });
  t.match(plainHttp.body.error_description, /jwks_uri.*https/);
});

t.test('malformed client assertions are invalid_request or invalid_client, never a 500', async (t) => {
  const { issuer } = await listen(t);
  const post = (form: Record<string, string>) =>
    fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...form }),
    }).then(refusal);
  const TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
  t.same((await post({ client_assertion: 'x.y.z' })).body, {
    error: 'invalid_request',
    error_description: 'client_assertion and client_assertion_type go together (RFC 7521 section 4.2)',
  });
  t.same(await post({ client_assertion_type: TYPE, client_assertion: 'not-a-jwt' }), { status: 401, body: FAILED });
  t.equal((await post({ client_assertion_type: 'urn:other', client_assertion: 'a.b.c' })).status, 401);
  t.equal(
    (await post({ client_assertion_type: TYPE, client_assertion: 'a.b.c', client_secret: 's' })).status,
    400,
    'an assertion and a secret together are two methods (RFC 6749 §2.3)',
  );
});
