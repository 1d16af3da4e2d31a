import type { FastifyInstance } from 'fastify';
import * as client from 'openid-client';
import t from 'tap';
import { listenGatehouse } from '../fixtures/listen.js';
import { UserAgent } from '../fixtures/user-agent.js';

/**
 * openid-client (panva, v6) as an OpenID Connect Relying Party at its defaults: OIDC discovery, dynamic
 * registration, code + PKCE + nonce with the ID token validated by the library (signature against the
 * JWKS, iss, aud, azp, exp, iat, nonce, auth_time under max_age), UserInfo with the expected subject,
 * refresh returning an ID token, prompt=none with and without a session, max_age=0.
 *
 * There is no TLS in these tests, so every Configuration runs openid-client's documented development
 * option `client.allowInsecureRequests`; no other check is relaxed.
 */

const EXECUTE = { execute: [client.allowInsecureRequests] };
const REDIRECT = 'https://rp.example.com/callback';
const HOST_CLAIMS = {
  name: 'Alice Liddell',
  given_name: 'Alice',
  email: 'alice@example.com',
  email_verified: true,
  phone_number: '+44 20 7946 0000',
  employee_id: 'E-1865',
  internal_note: 'never released: no scope names it',
};
const ENV = {
  CLAIMS: '{"employment":{"description":"your employee number","claims":["employee_id"]}}',
};

async function relyingParty(issuer: string, extra: Record<string, unknown> = {}) {
  return client.dynamicClientRegistration(
    new URL(issuer),
    {
      client_name: 'OIDC relying party',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...extra,
    },
    client.ClientSecretBasic(),
    EXECUTE,
  );
}

/**
 * A relying party an operator registered (admin API): Gatehouse redirects errors such as
 * login_required only to a redirect URI an operator vetted (RFC 9700 §4.11.2).
 */
async function operatorRelyingParty(app: FastifyInstance, issuer: string) {
  const { client: created, secret } = await app.clientAdmin.create({
    name: 'Operator relying party',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  return client.discovery(new URL(issuer), created.client_id, secret!, client.ClientSecretBasic(), EXECUTE);
}

async function authorizationUrl(config: client.Configuration, params: Record<string, string>) {
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  });
  return { url, verifier };
}

t.test('openid-client: discovery, code + PKCE + nonce, ID token, userinfo, refresh', async (t) => {
  const { issuer } = await listenGatehouse(t, ENV);
  const config = await relyingParty(issuer);
  const server = config.serverMetadata();
  t.equal(server.userinfo_endpoint, `${issuer}/userinfo`);
  t.ok(server.scopes_supported?.includes('openid'), 'openid is advertised');
  t.ok(server.claims_supported?.includes('email'), 'claims_supported names the standard claims');
  t.ok(server.claims_supported?.includes('employee_id'), 'and the operator’s');
  t.equal(server.claims_parameter_supported, false);
  t.equal(server.request_parameter_supported, false);

  const nonce = client.randomNonce();
  const state = client.randomState();
  const { url, verifier } = await authorizationUrl(config, {
    scope: 'openid profile email employment',
    nonce,
    state,
  });
  const seen: Array<Record<string, unknown>> = [];
  const agent = new UserAgent(issuer);
  const callback = await agent.authorize(url, {
    answer: { claims: HOST_CLAIMS, acr: 'urn:example:mfa', amr: ['pwd', 'otp'] },
    onLoginRequest: (payload) => seen.push(payload),
  });
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const idToken = tokens.claims()!;
  t.equal(idToken.iss, issuer);
  t.equal(idToken.sub, 'alice');
  t.equal(idToken.aud, config.clientMetadata().client_id);
  t.equal(idToken.azp, config.clientMetadata().client_id);
  t.equal(idToken.nonce, nonce, 'the nonce is echoed exactly');
  t.equal(idToken.acr, 'urn:example:mfa', 'the host’s acr');
  t.same(idToken.amr, ['pwd', 'otp'], 'the host’s amr');
  t.type(idToken.auth_time, 'number');
  t.type(idToken.at_hash, 'string', 'at_hash (OIDC Core §3.1.3.6)');
  t.match(idToken.sid, /^[0-9a-f]{32}$/, 'sid: the session’s public id');
  t.notOk('email' in idToken, 'profile claims come from /userinfo, not the ID token (OIDC Core §5.4)');
  t.type(tokens.refresh_token, 'string');

  const info = await client.fetchUserInfo(config, tokens.access_token, 'alice');
  t.same(
    info,
    {
      sub: 'alice',
      name: 'Alice Liddell',
      given_name: 'Alice',
      email: 'alice@example.com',
      email_verified: true,
      employee_id: 'E-1865',
    },
    'the consented claims only: no phone (phone was not asked), nothing no scope names',
  );

  // OIDC Core §12.2: refreshing returns an ID token for the same user and client, auth_time of the sign-in, no nonce.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
  const again = refreshed.claims()!;
  t.equal(again.sub, 'alice');
  t.equal(again.aud, config.clientMetadata().client_id);
  t.equal(again.auth_time, idToken.auth_time, 'the original sign-in time');
  t.equal(again.acr, 'urn:example:mfa');
  t.equal(again.sid, idToken.sid, 'the chain keeps the session’s sid');
  t.notOk('nonce' in again, 'no nonce on refresh');
  // The refresh chain keeps answering /userinfo, from the claims kept with the grant.
  t.equal((await client.fetchUserInfo(config, refreshed.access_token, 'alice')).email, 'alice@example.com');
  // A refresh narrowed to openid alone releases only sub.
  const narrowed = await client.refreshTokenGrant(config, refreshed.refresh_token!, { scope: 'openid' });
  t.same(await client.fetchUserInfo(config, narrowed.access_token, 'alice'), { sub: 'alice' });
});

t.test('openid-client: prompt=none without a session is login_required; with one, a code silently', async (t) => {
  const { app, issuer } = await listenGatehouse(t, ENV);
  const config = await operatorRelyingParty(app, issuer);
  const agent = new UserAgent(issuer);

  const state = client.randomState();
  const first = await authorizationUrl(config, { scope: 'openid', prompt: 'none', state });
  const refused = await agent.authorize(first.url);
  await t.rejects(
    client.authorizationCodeGrant(config, refused, { pkceCodeVerifier: first.verifier, expectedState: state }),
    { name: 'AuthorizationResponseError', error: 'login_required' },
  );

  // Sign in once (consent given), then prompt=none answers from the session without a page.
  const nonce = client.randomNonce();
  const signIn = await authorizationUrl(config, { scope: 'openid email', nonce });
  const signed = await agent.authorize(signIn.url, { answer: { claims: HOST_CLAIMS } });
  const firstTokens = await client.authorizationCodeGrant(config, signed, {
    pkceCodeVerifier: signIn.verifier,
    expectedNonce: nonce,
  });
  const idTokenHint = firstTokens.id_token!;

  const silentNonce = client.randomNonce();
  const silent = await authorizationUrl(config, {
    scope: 'openid email',
    prompt: 'none',
    nonce: silentNonce,
    id_token_hint: idTokenHint,
  });
  let consentShown = false;
  const callback = await agent.authorize(silent.url, { onConsent: () => (consentShown = true) });
  t.notOk(consentShown, 'no page is shown for prompt=none');
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: silent.verifier,
    expectedNonce: silentNonce,
  });
  t.equal(tokens.claims()!.sub, 'alice');
  t.equal(tokens.claims()!.auth_time, firstTokens.claims()!.auth_time, 'the session’s sign-in, not a new one');
});

t.test('openid-client: max_age=0 forces a fresh sign-in and auth_time is checked', async (t) => {
  const { issuer } = await listenGatehouse(t, ENV);
  const config = await relyingParty(issuer);
  const agent = new UserAgent(issuer);
  const first = await authorizationUrl(config, { scope: 'openid' });
  await agent.authorize(first.url);

  const hints: Array<Record<string, unknown>> = [];
  const nonce = client.randomNonce();
  const { url, verifier } = await authorizationUrl(config, { scope: 'openid', max_age: '0', nonce });
  const callback = await agent.authorize(url, {
    onLoginRequest: (payload) => hints.push(payload),
    answer: { auth_time: Math.floor(Date.now() / 1000) },
  });
  t.equal(hints.length, 1, 'the session was not reused: the host was asked again');
  t.equal(hints[0]!.max_age, 0, 'the host is told max_age');
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    maxAge: 0,
  });
  t.type(tokens.claims()!.auth_time, 'number', 'auth_time is present (OIDC Core §2 with max_age)');
});
