import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import t from 'tap';
import { listenGatehouse } from '../fixtures/listen.js';
import { UserAgent } from '../fixtures/user-agent.js';

/**
 * openid-client (panva, v6) as an independent client: the same flow as oauth4webapi's, through the
 * library's high-level Configuration API, plus client_credentials for a client an operator created.
 *
 * There is no TLS in these tests, so every Configuration runs openid-client's documented development
 * option `client.allowInsecureRequests` (through `execute`, which also covers the discovery request)
 * to permit `http://127.0.0.1` URLs; no other check is relaxed.
 *
 * Discovery uses `algorithm: 'oauth2'` (RFC 8414, /.well-known/oauth-authorization-server): Gatehouse
 * is an OAuth 2.1 authorization server that issues no ID tokens. openid-client demands an ID token only
 * when asked to (an expected nonce, max_age or idTokenExpected), which these flows never do, so its
 * default `oidc` discovery would work too; it is run once, to show both documents agree.
 */

const RESOURCE = 'https://mcp.example.com/mcp';
const OTHER_RESOURCE = 'https://api.example.com/v1';
const ENV = { RESOURCES: `${RESOURCE} ${OTHER_RESOURCE}` };
const OPTIONS: client.DiscoveryRequestOptions = { algorithm: 'oauth2', execute: [client.allowInsecureRequests] };

type Method = 'none' | 'client_secret_basic' | 'client_secret_post';

/** openid-client's ClientAuth for a method; without an argument the secret comes from the client metadata. */
function clientAuth(method: Method): client.ClientAuth {
  if (method === 'none') return client.None();
  return method === 'client_secret_basic' ? client.ClientSecretBasic() : client.ClientSecretPost();
}

/** Verifies an access token as a resource server would: RFC 9068 typ, the issuer's JWKS, iss, aud. */
async function verifyAccessToken(config: client.Configuration, token: string, audience: string) {
  const metadata = config.serverMetadata();
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri!));
  return (await jwtVerify(token, jwks, { issuer: metadata.issuer, audience, typ: 'at+jwt' })).payload;
}

const variants: Array<{ method: Method; redirectUri: string }> = [
  { method: 'none', redirectUri: 'http://127.0.0.1:48211/callback' },
  { method: 'client_secret_basic', redirectUri: 'https://client.example.com/oauth/callback' },
  { method: 'client_secret_post', redirectUri: 'https://client.example.com/oauth/callback' },
];

for (const { method, redirectUri } of variants) {
  t.test(
    `openid-client, token_endpoint_auth_method ${method}: register, authorize, redeem, refresh, revoke`,
    async (t) => {
      const { issuer } = await listenGatehouse(t, ENV);

      // Discovery (RFC 8414) and RFC 7591 registration in one call.
      const config = await client.dynamicClientRegistration(
        new URL(issuer),
        {
          client_name: `openid-client ${method}`,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: method,
          scope: 'read write',
        },
        clientAuth(method),
        OPTIONS,
      );
      t.equal(config.serverMetadata().issuer, issuer);
      t.ok(config.serverMetadata().supportsPKCE('S256'), 'S256 advertised');
      const registered = config.clientMetadata();
      t.equal(registered.token_endpoint_auth_method, method);
      t.equal(typeof registered.client_secret, method === 'none' ? 'undefined' : 'string');

      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'read write',
        state,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        resource: RESOURCE,
      });
      t.equal(url.origin + url.pathname, `${issuer}/authorize`);
      const callback = await new UserAgent(issuer).authorize(url);
      t.equal(callback.origin + callback.pathname, redirectUri);

      // authorizationCodeGrant validates state and iss (RFC 9207), then redeems with the code verifier.
      const tokens = await client.authorizationCodeGrant(
        config,
        callback,
        { pkceCodeVerifier: verifier, expectedState: state },
        { resource: RESOURCE },
      );
      t.equal(tokens.token_type, 'bearer');
      t.type(tokens.expiresIn(), 'number');
      t.equal(tokens.scope, 'read write');
      t.type(tokens.refresh_token, 'string');
      const claims = await verifyAccessToken(config, tokens.access_token, RESOURCE);
      t.equal(claims.sub, 'alice');
      t.equal(claims.client_id, registered.client_id);
      await t.rejects(
        verifyAccessToken(config, tokens.access_token, OTHER_RESOURCE),
        { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' },
        'not for another resource',
      );

      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated');
      t.equal((await verifyAccessToken(config, refreshed.access_token, RESOURCE)).sub, 'alice');

      await client.tokenRevocation(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
      await t.rejects(client.refreshTokenGrant(config, refreshed.refresh_token!), {
        name: 'ResponseBodyError',
        error: 'invalid_grant',
        status: 400,
      });

      // A second redemption of the same callback fails (RFC 6749 §4.1.2).
      await t.rejects(
        client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }),
        { name: 'ResponseBodyError', error: 'invalid_grant' },
      );
    },
  );
}

t.test('openid-client: OIDC discovery of the same issuer agrees with RFC 8414 discovery', async (t) => {
  const { app, issuer } = await listenGatehouse(t, ENV);
  const { client: created } = await app.clientAdmin.create({
    name: 'Discovery probe',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['https://client.example.com/cb'],
  });
  const oidc = await client.discovery(new URL(issuer), created.client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const oauth2 = await client.discovery(new URL(issuer), created.client_id, undefined, client.None(), OPTIONS);
  t.equal(oidc.serverMetadata().issuer, issuer);
  t.equal(oidc.serverMetadata().token_endpoint, oauth2.serverMetadata().token_endpoint);
  t.equal(oidc.serverMetadata().jwks_uri, oauth2.serverMetadata().jwks_uri);
});

t.test('openid-client: client_credentials for a confidential client an operator created', async (t) => {
  const { app, issuer } = await listenGatehouse(t, ENV);
  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    const { client: created, secret } = await app.clientAdmin.create({
      name: `Machine client (${method})`,
      token_endpoint_auth_method: method,
      grant_types: ['client_credentials'],
      scopes: ['read'],
    });
    t.type(secret, 'string', 'a confidential client gets a secret');
    const config = await client.discovery(new URL(issuer), created.client_id, secret!, clientAuth(method), OPTIONS);
    const tokens = await client.clientCredentialsGrant(config, { scope: 'read', resource: OTHER_RESOURCE });
    t.equal(tokens.token_type, 'bearer');
    t.notOk(tokens.refresh_token, 'no refresh token for client_credentials');
    const claims = await verifyAccessToken(config, tokens.access_token, OTHER_RESOURCE);
    t.equal(claims.client_id, created.client_id);
    t.equal(claims.scope, 'read');
    t.equal(claims.sub, created.client_id, 'RFC 9068 §2.2: sub is the client when no user is involved');

    // A scope the client was not given is refused.
    await t.rejects(client.clientCredentialsGrant(config, { scope: 'write' }), {
      name: 'ResponseBodyError',
      error: 'invalid_scope',
    });
    // The wrong secret is refused.
    const wrong = await client.discovery(
      new URL(issuer),
      created.client_id,
      'not-the-secret',
      clientAuth(method),
      OPTIONS,
    );
    await t.rejects(
      client.clientCredentialsGrant(wrong, { scope: 'read' }),
      method === 'client_secret_basic'
        ? { name: 'WWWAuthenticateChallengeError', status: 401 }
        : { name: 'ResponseBodyError', error: 'invalid_client', status: 401 },
    );
  }
});
