import * as oauth from 'oauth4webapi';
import t from 'tap';
import { listenGatehouse } from '../fixtures/listen.js';
import { UserAgent } from '../fixtures/user-agent.js';
import { clientKey, jwksOf } from '../kit/client-keys.js';
import { CIMD_ENV, clientIdDocument, startDocumentServer } from './document-server.js';

/**
 * A client-id document client with private_key_jwt (the CIMD draft forbids only shared secrets, §4.1):
 * its document names jwks_uri on its own server; it pushes its request (PAR) with an assertion before
 * Gatehouse has ever stored it (/par resolves the document like /authorize), and redeems the code with
 * another. oauth4webapi, unmodified, is the client.
 */

const HTTP = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'http://127.0.0.1:53124/callback';

t.test('a metadata-document client authenticates with private_key_jwt and keys at its jwks_uri', async (t) => {
  const site = await startDocumentServer(t);
  const key = await clientKey('ES256', 'doc-key');
  const clientId = `${site.origin}/client.json`;
  site.json(
    '/client.json',
    clientIdDocument(clientId, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: `${site.origin}/jwks.json`,
      scope: 'read',
    }),
  );
  site.json('/jwks.json', jwksOf(key));
  const { issuer } = await listenGatehouse(t, {
    ...CIMD_ENV,
    CIMD_FETCH_TIMEOUT_MS: '2000',
    RESOURCES: 'https://api.example.com',
  });
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, HTTP));
  const client: oauth.Client = { client_id: clientId };
  const auth = oauth.PrivateKeyJwt({ key: key.privateKey, kid: key.kid });

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
        redirect_uri: REDIRECT,
        scope: 'read',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      HTTP,
    ),
  );
  t.equal(site.hits('/client.json'), 1, 'the document was fetched for the push');
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('request_uri', pushed.request_uri);
  const callback = await new UserAgent(issuer).authorize(url);
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, HTTP),
  );
  t.equal(tokens.scope, 'read');
  t.equal(site.hits('/jwks.json'), 1, 'its key set was fetched once, then cached');

  // Without an assertion, the client is not public: naming itself is not enough.
  const unauthenticated = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, HTTP);
  t.equal(unauthenticated.status, 401);
});
