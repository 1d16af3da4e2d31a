import * as oidc from 'openid-client';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { CERT_FILE, startDocumentServer } from '../cimd/document-server.js';
import { listenGatehouse } from '../fixtures/listen.js';
import { UserAgent } from '../fixtures/user-agent.js';
import { clientKey, jwksOf } from '../kit/client-keys.js';

/**
 * Pushed authorization requests (RFC 9126) with oauth4webapi and openid-client, unmodified: a public
 * client pushes (identifying itself by client_id, §2), the browser carries only client_id and
 * request_uri, the code is redeemed with PKCE; a confidential FAPI 2.0 client does the same with
 * private_key_jwt through openid-client's PAR support. The request_uri is then refused when reused,
 * when presented by another client, and (tested in test/par.test.ts, with a moved clock) once expired.
 *
 * No TLS on Gatehouse here: `allowInsecureRequests` permits the http://127.0.0.1 issuer, nothing else.
 */

const HTTP = { [oauth.allowInsecureRequests]: true } as const;
const RESOURCE = 'https://mcp.example.com/mcp';
const ENV = {
  RESOURCES: RESOURCE,
  CIMD_ALLOW_PRIVATE_ADDRESSES: 'true',
  CIMD_CA_FILE: CERT_FILE,
  CIMD_FETCH_TIMEOUT_MS: '2000',
};

/** The error page of a refused /authorize: its status and the RFC error code it names. */
async function authorizePage(url: URL): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, body: await res.text() };
}

t.test('oauth4webapi: PAR + code + PKCE for a public client; the request_uri is used once', async (t) => {
  const { issuer } = await listenGatehouse(t, ENV);
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, HTTP));
  t.equal(as.pushed_authorization_request_endpoint, `${issuer}/par`, 'RFC 9126 §5 metadata');
  t.equal(as.require_pushed_authorization_requests, false);

  const redirectUri = 'http://127.0.0.1:43118/callback';
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'PAR public client',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
        scope: 'read write',
      },
      HTTP,
    ),
  );
  const client: oauth.Client = { client_id: registered.client_id, token_endpoint_auth_method: 'none' };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const response = await oauth.pushedAuthorizationRequest(
    as,
    client,
    oauth.None(),
    {
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'read write',
      state,
      resource: RESOURCE,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    },
    HTTP,
  );
  t.equal(response.status, 201, 'RFC 9126 §2.2: 201 Created');
  t.equal(response.headers.get('cache-control'), 'no-store');
  const pushed = await oauth.processPushedAuthorizationResponse(as, client, response);
  t.match(pushed.request_uri, /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/);
  t.equal(pushed.expires_in, 60, 'PAR_REQUEST_URI_TTL_SECONDS');

  // RFC 9126 §4: the browser carries client_id and request_uri only; parameters added here are ignored.
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('request_uri', pushed.request_uri);
  url.searchParams.set('scope', 'write');
  const callback = await new UserAgent(issuer).authorize(url);
  t.equal(`${callback.origin}${callback.pathname}`, redirectUri);
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, HTTP),
  );
  t.equal(tokens.scope, 'read write', 'the pushed scope, not the one added to the URL');
  const claims = await oauth.validateJwtAccessToken(
    as,
    new Request(RESOURCE, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
    RESOURCE,
    HTTP,
  );
  t.equal(claims.aud, RESOURCE, 'the pushed resource indicator');

  // Used once (RFC 9126 §4): the same request_uri again is invalid_request_uri on Gatehouse's page.
  const again = await authorizePage(url);
  t.equal(again.status, 400);
  t.match(again.body, /invalid_request_uri/);
  t.match(again.body, /already used/);
});

t.test('a request_uri works only for the client that pushed it (RFC 9126 §4)', async (t) => {
  const { app, issuer } = await listenGatehouse(t, ENV);
  const redirectUri = 'http://127.0.0.1:43119/callback';
  const make = async (name: string) =>
    (
      await app.clientAdmin.create({
        name,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [redirectUri],
        scopes: ['read'],
      })
    ).client.client_id;
  const owner = await make('Owner');
  const other = await make('Other');
  const push = await fetch(`${issuer}/par`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: owner,
      response_type: 'code',
      redirect_uri: redirectUri,
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
    }),
  });
  t.equal(push.status, 201, await push.clone().text());
  const { request_uri: requestUri } = (await push.json()) as { request_uri: string };
  const at = (clientId: string) => {
    const url = new URL(`${issuer}/authorize`);
    url.searchParams.set('client_id', clientId);
    url.searchParams.set('request_uri', requestUri);
    return url;
  };
  const stolen = await authorizePage(at(other));
  t.equal(stolen.status, 400);
  t.match(stolen.body, /invalid_request_uri/, 'another client_id is refused');
  const missing = await authorizePage(new URL(`${issuer}/authorize?request_uri=${encodeURIComponent(requestUri)}`));
  t.equal(missing.status, 400);
  t.match(missing.body, /client_id is required with request_uri/i);
  // The other client's attempt did not use it up: its owner still can.
  const owned = await fetch(at(owner), { redirect: 'manual' });
  t.equal(owned.status, 303, 'the owner is sent on to sign in');
  const unknown = await authorizePage(
    new URL(`${issuer}/authorize?client_id=${owner}&request_uri=urn:ietf:params:oauth:request_uri:nope`),
  );
  t.match(unknown.body, /invalid_request_uri/);
});

t.test('openid-client: a FAPI 2.0 client pushes with private_key_jwt, then code + PKCE', async (t) => {
  const { app, issuer } = await listenGatehouse(t, ENV);
  const keys = await startDocumentServer(t);
  const key = await clientKey('PS256', 'fapi-key');
  keys.json('/jwks.json', jwksOf(key));
  const redirectUri = 'https://bank-client.example.com/cb';
  const { client: registered } = await app.clientAdmin.create({
    name: 'FAPI client',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: `${keys.origin}/jwks.json`,
    security_profile: 'fapi2',
    scopes: ['read'],
  });
  t.equal(registered.require_pushed_authorization_requests, true, 'the FAPI 2.0 profile implies PAR');
  t.equal(registered.dpop_bound_access_tokens, true, 'and DPoP-bound tokens');

  const config = await oidc.discovery(
    new URL(issuer),
    registered.client_id,
    { token_endpoint_auth_method: 'private_key_jwt' },
    oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }),
    { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] },
  );
  t.equal(config.serverMetadata().pushed_authorization_request_endpoint, `${issuer}/par`);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = await oidc.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: redirectUri,
    scope: 'read',
    state,
    resource: RESOURCE,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  t.same([...url.searchParams.keys()].sort(), ['client_id', 'request_uri'], 'only client_id and request_uri travel');
  const callback = await new UserAgent(issuer).authorize(url);
  // FAPI 2.0 §5.3.2.1: the code exchange needs a DPoP proof; without one it is refused, the code unburnt.
  await t.rejects(
    oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }),
    { error: 'invalid_request', error_description: /DPoP proof .* is required/ } as unknown as Error,
    'no DPoP proof: refused',
  );
  const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  const tokens = await oidc.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier: verifier, expectedState: state },
    undefined,
    { DPoP },
  );
  t.equal(tokens.scope, 'read');
  t.equal(tokens.token_type.toLowerCase(), 'dpop', 'the access token is bound to the client key');
  t.type(tokens.refresh_token, 'string');

  // Without PAR, this client's /authorize is refused, saying why (RFC 9126 §6, FAPI 2.0).
  const plain = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'read',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const back = await fetch(plain, { redirect: 'manual' });
  t.equal(back.status, 303, 'an operator-vetted client: the error goes back to its redirect URI');
  const location = new URL(back.headers.get('location')!);
  t.equal(location.searchParams.get('error'), 'invalid_request');
  t.match(location.searchParams.get('error_description'), /FAPI 2.0 profile .* requires pushed authorization requests/);
});
