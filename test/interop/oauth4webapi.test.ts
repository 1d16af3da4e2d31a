import * as oauth from 'oauth4webapi';
import t from 'tap';
import { listenGatehouse, listenGatehouseBehindPath } from '../fixtures/listen.js';
import { authorizationRequest, UserAgent } from '../fixtures/user-agent.js';

/**
 * oauth4webapi (panva, v3) as an independent client: discovery, dynamic registration, authorization
 * code + PKCE with a resource indicator, the RFC 9207 `iss` check, the code exchange, RFC 9068 access
 * token validation as a resource server does it, refresh, revocation. Where it refuses Gatehouse,
 * Gatehouse is wrong.
 *
 * There is no TLS in these tests, so every call passes oauth4webapi's documented development option
 * `[oauth.allowInsecureRequests]` to permit `http://127.0.0.1` URLs; no other check is relaxed.
 */

const RESOURCE = 'https://mcp.example.com/mcp';
const OTHER_RESOURCE = 'https://api.example.com/v1';
const ENV = { RESOURCES: `${RESOURCE} ${OTHER_RESOURCE}` };
const HTTP = { [oauth.allowInsecureRequests]: true } as const;

type Method = 'none' | 'client_secret_basic' | 'client_secret_post';

function clientAuth(method: Method, secret: string | undefined): oauth.ClientAuth {
  if (method === 'none') return oauth.None();
  if (typeof secret !== 'string') throw new Error(`${method} registration returned no client_secret`);
  return method === 'client_secret_basic' ? oauth.ClientSecretBasic(secret) : oauth.ClientSecretPost(secret);
}

const variants: Array<{ method: Method; redirectUri: string }> = [
  // A public native client on a loopback redirect (RFC 8252 §7.3).
  { method: 'none', redirectUri: 'http://127.0.0.1:43117/callback' },
  // Confidential web clients on an https redirect (only ever read from Location here).
  { method: 'client_secret_basic', redirectUri: 'https://client.example.com/oauth/callback' },
  { method: 'client_secret_post', redirectUri: 'https://client.example.com/oauth/callback' },
];

for (const { method, redirectUri } of variants) {
  t.test(
    `oauth4webapi, token_endpoint_auth_method ${method}: discover, register, authorize, redeem, validate, refresh, revoke`,
    async (t) => {
      const { issuer } = await listenGatehouse(t, ENV);
      const issuerUrl = new URL(issuer);

      // RFC 8414 discovery: issuer must equal the URL it was discovered from (§3.3).
      const as = await oauth.processDiscoveryResponse(
        issuerUrl,
        await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...HTTP }),
      );
      t.equal(as.issuer, issuer);
      t.ok(as.registration_endpoint, 'DCR advertised');
      t.same(as.code_challenge_methods_supported, ['S256']);
      t.equal(as.authorization_response_iss_parameter_supported, true);
      // The OpenID Connect discovery document names the same issuer.
      const oidc = await oauth.processDiscoveryResponse(
        issuerUrl,
        await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...HTTP }),
      );
      t.equal(oidc.token_endpoint, as.token_endpoint);

      // RFC 7591 registration.
      const registered = await oauth.processDynamicClientRegistrationResponse(
        await oauth.dynamicClientRegistrationRequest(
          as,
          {
            client_name: `oauth4webapi ${method}`,
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: method,
            scope: 'read write',
          },
          HTTP,
        ),
      );
      t.match(registered.client_id, /\S/);
      t.equal(registered.token_endpoint_auth_method, method);
      if (method === 'none') t.notOk(registered.client_secret, 'a public client gets no secret');
      else t.type(registered.client_secret, 'string');
      const client: oauth.Client = { client_id: registered.client_id, token_endpoint_auth_method: method };
      const auth = clientAuth(method, registered.client_secret as string | undefined);

      // Authorization request: PKCE S256, state, resource indicator (RFC 8707 §2.1).
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = await authorizationRequest(as, verifier, {
        client_id: client.client_id,
        redirect_uri: redirectUri,
        scope: 'read write',
        state,
        resource: RESOURCE,
      });
      const callback = await new UserAgent(issuer).authorize(url);
      t.equal(`${callback.origin}${callback.pathname}`, redirectUri, 'back at the registered redirect');

      // RFC 9207: validateAuthResponse requires iss (the metadata promises it) and compares it to the issuer.
      const params = oauth.validateAuthResponse(as, client, callback, state);
      t.equal(params.get('iss'), issuer);
      t.throws(
        () => oauth.validateAuthResponse(as, client, callback, oauth.generateRandomState()),
        'a foreign state is refused',
      );

      // Code exchange.
      const exchange = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, {
        ...HTTP,
        additionalParameters: { resource: RESOURCE },
      });
      t.equal(exchange.headers.get('cache-control'), 'no-store', 'RFC 6749 §5.1');
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, exchange);
      t.equal(tokens.token_type, 'bearer');
      t.type(tokens.expires_in, 'number');
      t.type(tokens.refresh_token, 'string');
      t.equal(tokens.scope, 'read write');

      // RFC 9068, validated as the resource server at RESOURCE would: typ, signature (JWKS), iss, exp, aud.
      const claims = await oauth.validateJwtAccessToken(
        as,
        new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
        RESOURCE,
        HTTP,
      );
      t.equal(claims.aud, RESOURCE, 'aud is exactly the resource asked for');
      t.equal(claims.sub, 'alice');
      t.equal(claims.client_id, client.client_id);
      t.equal(claims.scope, 'read write');
      await t.rejects(
        oauth.validateJwtAccessToken(
          as,
          new Request(OTHER_RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
          OTHER_RESOURCE,
          HTTP,
        ),
        { code: oauth.JWT_CLAIM_COMPARISON },
        'another resource server refuses it',
      );

      // Refresh: a new access token and a rotated refresh token.
      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, HTTP),
      );
      t.type(refreshed.refresh_token, 'string');
      t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated');
      const refreshedClaims = await oauth.validateJwtAccessToken(
        as,
        new Request(RESOURCE, { headers: { authorization: `Bearer ${refreshed.access_token}` } }),
        RESOURCE,
        HTTP,
      );
      t.equal(refreshedClaims.sub, 'alice');
      t.equal(refreshedClaims.aud, RESOURCE, 'refresh keeps the resource');

      // RFC 7009 revocation, then the revoked token no longer refreshes.
      const revocation = await oauth.revocationRequest(as, client, auth, refreshed.refresh_token!, HTTP);
      t.equal(await oauth.processRevocationResponse(revocation), undefined);
      const after = await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token!, HTTP);
      await t.rejects(oauth.processRefreshTokenResponse(as, client, after), {
        code: oauth.RESPONSE_BODY_ERROR,
        error: 'invalid_grant',
        status: 400,
      });
    },
  );
}

t.test('oauth4webapi reads Gatehouse errors: a denied consent, a wrong secret, a replayed code', async (t) => {
  const { issuer } = await listenGatehouse(t, ENV);
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(
    issuerUrl,
    await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...HTTP }),
  );
  const redirectUri = 'https://client.example.com/oauth/callback';
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      { client_name: 'oauth4webapi errors', redirect_uris: [redirectUri], scope: 'read' },
      HTTP,
    ),
  );
  t.equal(registered.token_endpoint_auth_method, 'client_secret_basic', 'RFC 7591 §2 default');
  const client: oauth.Client = { client_id: registered.client_id };
  const auth = oauth.ClientSecretBasic(registered.client_secret as string);
  const authorizationUrl = (state: string, verifier: string) =>
    authorizationRequest(as, verifier, {
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'read',
      state,
      resource: RESOURCE,
    });

  // The user denies: an RFC 6749 §4.1.2.1 error response that still carries iss (RFC 9207 §2).
  const deniedState = oauth.generateRandomState();
  const denied = await new UserAgent(issuer).authorize(
    await authorizationUrl(deniedState, oauth.generateRandomCodeVerifier()),
    { decision: 'deny' },
  );
  t.throws(() => oauth.validateAuthResponse(as, client, denied, deniedState), {
    code: oauth.AUTHORIZATION_RESPONSE_ERROR,
    error: 'access_denied',
  });

  const state = oauth.generateRandomState();
  const verifier = oauth.generateRandomCodeVerifier();
  const params = oauth.validateAuthResponse(
    as,
    client,
    await new UserAgent(issuer).authorize(await authorizationUrl(state, verifier)),
    state,
  );

  // A wrong secret over Basic: 401 with a WWW-Authenticate challenge (RFC 6749 §5.2), which the library surfaces.
  const wrong = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic('not-the-secret'),
    params,
    redirectUri,
    verifier,
    HTTP,
  );
  await t.rejects(oauth.processAuthorizationCodeResponse(as, client, wrong), {
    code: oauth.WWW_AUTHENTICATE_CHALLENGE,
    status: 401,
  });

  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, HTTP),
  );
  t.notOk(tokens.refresh_token, 'refresh_token was not registered');
  const claims = await oauth.validateJwtAccessToken(
    as,
    new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
    RESOURCE,
    HTTP,
  );
  t.equal(claims.scope, 'read');

  // RFC 6749 §4.1.2: a code is single use.
  const replay = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, HTTP);
  await t.rejects(oauth.processAuthorizationCodeResponse(as, client, replay), {
    code: oauth.RESPONSE_BODY_ERROR,
    error: 'invalid_grant',
  });
});

t.test(
  'oauth4webapi with a path issuer behind a path-stripping proxy (RFC 8414 §3.1 path-inserted discovery)',
  async (t) => {
    const { issuer } = await listenGatehouseBehindPath(t, ENV, '/auth');
    const issuerUrl = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(
      issuerUrl,
      await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...HTTP }),
    );
    t.equal(as.issuer, issuer);
    t.equal(as.token_endpoint, `${issuer}/token`);
    // OpenID Connect Discovery §4 appends the well-known path to the issuer's instead.
    const oidc = await oauth.processDiscoveryResponse(
      issuerUrl,
      await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...HTTP }),
    );
    t.equal(oidc.issuer, issuer);

    const redirectUri = 'http://127.0.0.1:43117/callback';
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        {
          client_name: 'Path issuer client',
          redirect_uris: [redirectUri],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
        },
        HTTP,
      ),
    );
    t.equal(
      new URL(registered.registration_client_uri as string).pathname,
      `/auth/register/${registered.client_id}`,
      'RFC 7592 URI under the issuer path',
    );
    const client: oauth.Client = { client_id: registered.client_id };
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = await authorizationRequest(as, verifier, {
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'read',
      state,
      resource: RESOURCE,
    });
    const ua = new UserAgent(issuer);
    const callback = await ua.authorize(url);
    t.ok(
      ua.hops.every((hop) => !hop.url.startsWith(issuerUrl.origin) || new URL(hop.url).pathname.startsWith('/auth/')),
      'every page and form of the flow stays under the issuer path',
    );
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, HTTP),
    );
    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      RESOURCE,
      HTTP,
    );
    t.equal(claims.iss, issuer, 'iss is the path issuer');
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, HTTP),
    );
    t.type(refreshed.access_token, 'string');
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.None(), refreshed.refresh_token!, HTTP),
    );
  },
);

t.test(
  'oauth4webapi: a request without state gets a response without state; prompt=none without a session is login_required',
  async (t) => {
    const { app, issuer } = await listenGatehouse(t, ENV);
    const issuerUrl = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(
      issuerUrl,
      await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...HTTP }),
    );
    const redirectUri = 'https://client.example.com/oauth/callback';
    // An operator's client: its redirect URI is trusted, so even an error before sign-in goes back to it
    // (a self-registered client's would be shown on Gatehouse's page instead, RFC 9700 §4.11.2).
    const { client: created } = await app.clientAdmin.create({
      name: 'Stateless',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      scopes: ['read', 'write'],
    });
    const client: oauth.Client = { client_id: created.client_id };
    const verifier = oauth.generateRandomCodeVerifier();
    const request = (extra: Record<string, string> = {}) =>
      authorizationRequest(as, verifier, { client_id: client.client_id, redirect_uri: redirectUri, ...extra });

    // PKCE protects the flow, so state is optional (OAuth 2.1 §4.1.1); none sent, none may come back.
    const silent = await new UserAgent(issuer).authorize(await request({ prompt: 'none' }));
    t.throws(() => oauth.validateAuthResponse(as, client, silent, oauth.expectNoState), {
      code: oauth.AUTHORIZATION_RESPONSE_ERROR,
      error: 'login_required',
    });
    const callback = await new UserAgent(issuer).authorize(await request());
    t.notOk(callback.searchParams.has('state'), 'no state parameter at all');
    const params = oauth.validateAuthResponse(as, client, callback, oauth.expectNoState);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, HTTP),
    );
    // No resource asked: the default resource (the first of RESOURCES), RFC 9068 §3.
    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      RESOURCE,
      HTTP,
    );
    t.equal(claims.aud, RESOURCE);
  },
);
