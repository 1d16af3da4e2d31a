import * as oauth from 'oauth4webapi';
import t from 'tap';
import { listenGatehouse } from '../fixtures/listen.js';
import { authorizationRequest, UserAgent } from '../fixtures/user-agent.js';

/**
 * oauth4webapi (panva, v3) as an OpenID Connect Relying Party at its strict defaults: OIDC discovery,
 * code + PKCE + nonce with the ID token validated (signature, iss, aud, azp, exp, iat, nonce, auth_time
 * under max_age), UserInfo with the expected subject, refresh with its ID token, prompt=none with an
 * id_token_hint naming another user (login_required), prompt=none with a session, max_age=0 and
 * RP-Initiated Logout at the discovered end_session_endpoint. Where it refuses Gatehouse, Gatehouse is wrong.
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

t.test(
  'oauth4webapi: prompt=none with a session, max_age=0 with auth_time checked, RP-initiated logout at the discovered end_session_endpoint',
  async (t) => {
    const { app, issuer } = await listenGatehouse(t, {});
    const issuerUrl = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(
      issuerUrl,
      await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...HTTP }),
    );
    t.equal(as.end_session_endpoint, `${issuer}/sign-out`);
    const signedOut = 'https://rp.example.com/signed-out';
    const redirect = 'https://rp.example.com/callback';
    // A confidential client: consent given to it is remembered, so prompt=none can answer silently.
    const { client: created, secret } = await app.clientAdmin.create({
      name: 'oauth4webapi RP',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [redirect],
      post_logout_redirect_uris: [signedOut],
      grant_types: ['authorization_code'],
    });
    const client: oauth.Client = { client_id: created.client_id };
    const auth = oauth.ClientSecretBasic(secret!);
    const agent = new UserAgent(issuer);
    const hostAsked: Array<Record<string, unknown>> = [];
    const onLoginRequest = (payload: Record<string, unknown>) => hostAsked.push(payload);

    /** One code flow for `params`, redeemed and validated by oauth4webapi; the validated ID token claims. */
    const signIn = async (params: Record<string, string>, maxAge?: number) => {
      const verifier = oauth.generateRandomCodeVerifier();
      const nonce = oauth.generateRandomNonce();
      const callback = await agent.authorize(
        await authorizationRequest(as, verifier, {
          client_id: client.client_id,
          redirect_uri: redirect,
          scope: 'openid',
          nonce,
          ...params,
        }),
        { sub: 'dana', onLoginRequest, answer: { auth_time: Math.floor(Date.now() / 1000) } },
      );
      const result = await oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(
          as,
          client,
          auth,
          oauth.validateAuthResponse(as, client, callback),
          redirect,
          verifier,
          HTTP,
        ),
        { expectedNonce: nonce, requireIdToken: true, ...(maxAge === undefined ? {} : { maxAge }) },
      );
      return { idToken: result.id_token!, claims: oauth.getValidatedIdTokenClaims(result)! };
    };

    const first = await signIn({});
    t.equal(first.claims.sub, 'dana');
    t.equal(hostAsked.length, 1, 'the first sign-in asks the host');

    const silent = await signIn({ prompt: 'none' });
    t.equal(silent.claims.sub, 'dana', 'prompt=none with a session: a code, silently');
    t.equal(silent.claims.sid, first.claims.sid, 'the same Gatehouse session');
    t.equal(hostAsked.length, 1, 'the host was not asked');

    const fresh = await signIn({ max_age: '0' }, 0);
    t.equal(hostAsked.length, 2, 'max_age=0: the session was not reused, the host was asked again');
    t.equal(hostAsked[1]!.max_age, 0, 'the host is told max_age');
    t.type(fresh.claims.auth_time, 'number', 'auth_time present and checked by oauth4webapi (maxAge: 0)');

    // RP-Initiated Logout 1.0 §2: the RP builds the request from the discovered endpoint.
    const logout = new URL(as.end_session_endpoint!);
    logout.search = new URLSearchParams({
      id_token_hint: fresh.idToken,
      post_logout_redirect_uri: signedOut,
      state: 'bye-1',
    }).toString();
    const res = await agent.get(logout);
    t.equal(res.status, 303, res.body.slice(0, 300));
    t.equal(res.location, `${signedOut}?state=bye-1`, 'back at the registered URI with state');

    const after = oauth.generateRandomCodeVerifier();
    const callback = await agent.authorize(
      await authorizationRequest(as, after, {
        client_id: client.client_id,
        redirect_uri: redirect,
        scope: 'openid',
        prompt: 'none',
      }),
    );
    t.throws(
      () => oauth.validateAuthResponse(as, client, callback),
      {
        name: 'AuthorizationResponseError',
        error: 'login_required',
      },
      'the session ended: prompt=none now needs a sign-in',
    );
  },
);
