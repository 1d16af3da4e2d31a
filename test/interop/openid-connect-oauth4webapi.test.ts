import * as oauth from 'oauth4webapi';
import t from 'tap';
import { listenGatehouse } from '../fixtures/listen.js';
import { authorizationRequest, UserAgent } from '../fixtures/user-agent.js';

/**
 * oauth4webapi (panva, v3) as an OpenID Connect Relying Party at its strict defaults: OIDC discovery,
 * code + PKCE + nonce with the ID token validated (signature, iss, aud, azp, exp, iat, nonce, auth_time
 * under max_age), UserInfo with the expected subject, refresh with its ID token, prompt=none with an
 * id_token_hint naming another user (login_required). Where it refuses Gatehouse, Gatehouse is wrong.
 *
 * No TLS here: every call passes oauth4webapi's documented `[oauth.allowInsecureRequests]`; no other
 * check is relaxed.
 */

const HTTP = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'http://127.0.0.1:45911/callback';
const CLAIMS = { email: 'bob@example.com', email_verified: false, address: { country: 'NZ' }, name: 'Bob' };

t.test('oauth4webapi: OIDC discovery, code + PKCE + nonce, ID token, userinfo, refresh, prompt=none', async (t) => {
  const { app, issuer } = await listenGatehouse(t, {});
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(
    issuerUrl,
    await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...HTTP }),
  );
  t.equal(as.userinfo_endpoint, `${issuer}/userinfo`);
  t.same(as.subject_types_supported, ['public']);
  t.same(as.response_types_supported, ['code']);

  // An operator's public native client: errors such as login_required are redirected to it.
  const { client: created } = await app.clientAdmin.create({
    name: 'oauth4webapi RP',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    default_max_age: 3600,
  });
  const client: oauth.Client = { client_id: created.client_id, default_max_age: 3600 };
  const auth = oauth.None();
  const agent = new UserAgent(issuer);

  const verifier = oauth.generateRandomCodeVerifier();
  const nonce = oauth.generateRandomNonce();
  const url = await authorizationRequest(as, verifier, {
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    scope: 'openid email address',
    nonce,
  });
  const hints: Array<Record<string, unknown>> = [];
  const callback = await agent.authorize(url, {
    sub: 'bob',
    answer: { claims: CLAIMS, amr: ['hwk'] },
    onLoginRequest: (payload) => hints.push(payload),
  });
  t.equal(hints[0]!.max_age, 3600, 'the client’s default_max_age reaches the host');
  const params = oauth.validateAuthResponse(as, client, callback);
  const result = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, HTTP),
    { expectedNonce: nonce, requireIdToken: true },
  );
  const claims = oauth.getValidatedIdTokenClaims(result)!;
  t.equal(claims.sub, 'bob');
  t.equal(claims.nonce, nonce);
  t.same(claims.amr, ['hwk']);
  t.notOk('acr' in claims, 'no acr when the host sent none');

  const info = await oauth.processUserInfoResponse(
    as,
    client,
    'bob',
    await oauth.userInfoRequest(as, client, result.access_token, HTTP),
  );
  t.same(info, { sub: 'bob', email: 'bob@example.com', email_verified: false, address: { country: 'NZ' } });

  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, auth, result.refresh_token!, HTTP),
  );
  const again = oauth.getValidatedIdTokenClaims(refreshed)!;
  t.equal(again.sub, 'bob');
  t.equal(again.auth_time, claims.auth_time);
  t.notOk('nonce' in again);

  // prompt=none with the ID token of another user: the session is bob's, the hint says carol's.
  const carol = await (async () => {
    const other = new UserAgent(issuer);
    const v = oauth.generateRandomCodeVerifier();
    const cb = await other.authorize(
      await authorizationRequest(as, v, { client_id: client.client_id, redirect_uri: REDIRECT, scope: 'openid' }),
      { sub: 'carol' },
    );
    const res = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        auth,
        oauth.validateAuthResponse(as, client, cb),
        REDIRECT,
        v,
        HTTP,
      ),
    );
    return res.id_token!;
  })();
  const silentVerifier = oauth.generateRandomCodeVerifier();
  const silent = await agent.authorize(
    await authorizationRequest(as, silentVerifier, {
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      scope: 'openid',
      prompt: 'none',
      id_token_hint: carol,
    }),
  );
  t.throws(() => oauth.validateAuthResponse(as, client, silent), {
    name: 'AuthorizationResponseError',
    error: 'login_required',
  });
});
