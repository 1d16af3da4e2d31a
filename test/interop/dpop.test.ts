import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { startResourceServer } from '../../examples/resource-server/app.js';
import { freePort, listenGatehouse } from '../fixtures/listen.js';
import { authorizationRequest, UserAgent } from '../fixtures/user-agent.js';

/**
 * oauth4webapi (unmodified) as a DPoP client (RFC 9449): a public client binds its code with dpop_jkt,
 * redeems it with a proof after a server-nonce round trip, refreshes with the same key (and is refused
 * with another key or none), and a confidential client gets DPoP-bound client_credentials tokens that
 * introspection describes with `cnf`; the example resource server accepts the bound token only with a
 * proof by that key.
 */

const RESOURCE = 'https://mcp.example.com/mcp';
const HTTP = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'http://127.0.0.1:43117/callback';

async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  return oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { algorithm: 'oauth2', ...HTTP }));
}

/** Runs `request` once more when the server asked for a DPoP nonce (RFC 9449 §8); the handle kept the nonce. */
async function withNonceRetry<T>(request: () => Promise<T>): Promise<{ result: T; nonceAsked: boolean }> {
  try {
    return { result: await request(), nonceAsked: false };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { result: await request(), nonceAsked: true };
  }
}

t.test(
  'oauth4webapi, public client: dpop_jkt-bound code, nonce round trip, bound refresh; another key or none is refused',
  async (t) => {
    // The resource server must know the issuer, and Gatehouse its resource: the port is picked first.
    const port = await freePort();
    const api = await startResourceServer({ issuer: `http://127.0.0.1:${port}`, port: 0 });
    t.teardown(() => api.close());
    const { issuer } = await listenGatehouse(
      t,
      { RESOURCES: `${RESOURCE} ${api.resource}`, DPOP_NONCE_REQUIRED: 'true' },
      { port },
    );
    const as = await discover(issuer);
    t.ok(as.dpop_signing_alg_values_supported?.includes('ES256'), 'RFC 9449 §5.1 metadata');
    t.notOk(as.dpop_signing_alg_values_supported?.some((alg) => alg === 'none' || alg.startsWith('HS')));

    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        {
          client_name: 'oauth4webapi DPoP',
          redirect_uris: [REDIRECT],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'none',
          scope: 'read',
          dpop_bound_access_tokens: true,
        },
        HTTP,
      ),
    );
    t.equal(registered.dpop_bound_access_tokens, true, 'RFC 9449 §5.2 metadata registered');
    const client: oauth.Client = { client_id: registered.client_id, token_endpoint_auth_method: 'none' };
    const keyPair = await oauth.generateKeyPair('ES256');
    const dpop = oauth.DPoP(client, keyPair);
    const jkt = await dpop.calculateThumbprint();

    // RFC 9449 §10: the code is bound to the key before it exists.
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = await authorizationRequest(as, verifier, {
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      scope: 'read',
      state,
      resource: api.resource,
      dpop_jkt: jkt,
    });
    const callback = await new UserAgent(issuer).authorize(url);
    const params = oauth.validateAuthResponse(as, client, callback, state);

    // A proof by another key cannot redeem the code, and does not burn it.
    const stranger = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const strangerAttempt = () =>
      oauth
        .authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier, {
          ...HTTP,
          DPoP: stranger,
        })
        .then((res) => oauth.processAuthorizationCodeResponse(as, client, res));
    await t.rejects(
      withNonceRetry(strangerAttempt),
      { code: oauth.RESPONSE_BODY_ERROR, error: 'invalid_grant', status: 400 },
      'dpop_jkt names another key',
    );

    // The first request has no nonce: use_dpop_nonce with a DPoP-Nonce header; the retry carries it.
    const exchange = () =>
      oauth
        .authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier, { ...HTTP, DPoP: dpop })
        .then((res) => oauth.processAuthorizationCodeResponse(as, client, res));
    const { result: tokens, nonceAsked } = await withNonceRetry(exchange);
    t.ok(nonceAsked, 'the server asked for a nonce (RFC 9449 §8)');
    t.equal(tokens.token_type, 'dpop', 'RFC 9449 §5: token_type DPoP');
    t.same(decodeJwt(tokens.access_token).cnf, { jkt }, 'RFC 9449 §6.1: cnf.jkt is the proof key');
    t.type(tokens.refresh_token, 'string');

    // Refresh with the same key: the handle now holds the nonce, so no extra round trip.
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, { ...HTTP, DPoP: dpop }),
    );
    t.equal(refreshed.token_type, 'dpop');
    t.same(decodeJwt(refreshed.access_token).cnf, { jkt });

    // RFC 9449 §5: the chain is bound to the key; another key, or no proof at all, is refused.
    const otherKey = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    await t.rejects(
      withNonceRetry(() =>
        oauth
          .refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token!, { ...HTTP, DPoP: otherKey })
          .then((res) => oauth.processRefreshTokenResponse(as, client, res)),
      ),
      { code: oauth.RESPONSE_BODY_ERROR, error: 'invalid_grant', status: 400 },
      'another key',
    );
    await t.rejects(
      oauth
        .refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token!, HTTP)
        .then((res) => oauth.processRefreshTokenResponse(as, client, res)),
      { code: oauth.RESPONSE_BODY_ERROR, status: 400 },
      'no proof',
    );
    // Neither refusal used the token up: the key holder still refreshes.
    const again = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token!, {
        ...HTTP,
        DPoP: dpop,
      }),
    );
    t.equal(again.token_type, 'dpop');

    // The resource server: the token (for it), bound, presented with a proof (ath, htm, htu) by the key.
    const forApi = again;
    const called = await oauth.protectedResourceRequest(
      forApi.access_token,
      'GET',
      new URL(api.resource),
      undefined,
      undefined,
      { ...HTTP, DPoP: dpop },
    );
    t.equal(called.status, 200, 'RFC 9449 §7: the bound token with a proof');
    t.match(await called.json(), { sub: 'alice', client_id: client.client_id });
    // The same token with a proof by another key, or as a bearer token, is refused with a DPoP challenge.
    for (const [name, options] of [
      ['another key', { ...HTTP, DPoP: otherKey }],
      ['as a bearer token', HTTP],
    ] as const) {
      const refused = await oauth
        .protectedResourceRequest(forApi.access_token, 'GET', new URL(api.resource), undefined, undefined, options)
        .then(
          () => null,
          (err: unknown) => err,
        );
      t.type(refused, oauth.WWWAuthenticateChallengeError, name);
      const challenge = (refused as oauth.WWWAuthenticateChallengeError).cause[0];
      t.equal(challenge?.scheme, 'dpop', `${name}: a DPoP challenge`);
      t.equal(challenge?.parameters.error, 'invalid_token', name);
      t.match(challenge?.parameters.algs, /ES256/, `${name}: algs (RFC 9449 §7.1)`);
    }
  },
);

t.test('oauth4webapi, confidential client: DPoP client_credentials, introspected with cnf', async (t) => {
  const { app, issuer } = await listenGatehouse(t, { RESOURCES: RESOURCE });
  const as = await discover(issuer);
  const created = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
    scopes: ['read'],
  });
  const client: oauth.Client = { client_id: created.client.client_id };
  const auth = oauth.ClientSecretBasic(created.secret!);
  const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const jkt = await dpop.calculateThumbprint();

  const tokens = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'read' }, { ...HTTP, DPoP: dpop }),
  );
  t.equal(tokens.token_type, 'dpop');
  t.same(decodeJwt(tokens.access_token).cnf, { jkt });

  // Without a proof the same client still gets a Bearer token: DPoP is optional unless required.
  const bearer = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'read' }, HTTP),
  );
  t.equal(bearer.token_type, 'bearer');
  t.notOk(decodeJwt(bearer.access_token).cnf);

  // RFC 9449 §6.2: introspection names the binding.
  const introspected = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, tokens.access_token, HTTP),
  );
  t.equal(introspected.active, true);
  t.equal(introspected.token_type, 'DPoP');
  t.same(introspected.cnf, { jkt });
  const plain = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, bearer.access_token, HTTP),
  );
  t.equal(plain.token_type, 'Bearer');
  t.notOk(plain.cnf);
});
