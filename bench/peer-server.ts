// The peer in `npm run bench`: node-oidc-provider 9 (a devDependency), configured for the same work as
// Gatehouse and the bare endpoint, with its in-memory adapter (it persists nothing, which favours it):
//   - the same two clients with the same ids and secrets (client_secret_basic): a service for
//     client_credentials, a web app for authorization_code + refresh_token with the same redirect URI;
//   - resource indicators (RFC 8707) with one resource, the bench's audience, whose access tokens are ES256
//     JWTs (typ at+jwt) signed with the same key file Gatehouse signs with; scopes read and write;
//   - refresh tokens issued on every code exchange and rotated on every use (rotateRefreshToken: true);
//   - introspection (RFC 7662) of access and refresh tokens by the client they were issued to.
// Codes are minted in process through the provider's own models (a Grant with the resource scopes, then an
// AuthorizationCode with a PKCE S256 challenge, saved by the adapter), as its interaction would after a
// sign-in and consent: `POST /bench/codes {n, opaque?}` answers the token-request bodies. Refresh-token chains come
// from redeeming such codes over HTTP. Listens on 127.0.0.1 only; prints `LISTENING <port>`.
//
// Environment: PEER_ISSUER, PEER_AUDIENCE, PEER_KEY_FILE (PKCS#8 PEM), PEER_KID, PEER_CLIENTS (JSON:
// [{client_id, client_secret, grant_types, redirect_uris?}]). Needs Node 22+ (oidc-provider 9).
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import Provider, { type Client, type ClientMetadata } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const { PEER_ISSUER, PEER_AUDIENCE, PEER_KEY_FILE, PEER_KID, PEER_CLIENTS = '[]' } = process.env;
const audience = PEER_AUDIENCE!;
/**
 * A second resource whose access tokens are opaque: node-oidc-provider refuses to introspect its JWT access
 * tokens (unsupported_token_type), so the introspection workload introspects a user's opaque token of this one.
 */
const OPAQUE_AUDIENCE = 'https://opaque.bench.example';
const SCOPE = 'read write';
const jwk = {
  ...createPrivateKey(readFileSync(PEER_KEY_FILE!, 'utf8')).export({ format: 'jwk' }),
  kid: PEER_KID,
  alg: 'ES256',
  use: 'sig',
};
const clients = (JSON.parse(PEER_CLIENTS) as ClientMetadata[]).map((c) => ({
  token_endpoint_auth_method: 'client_secret_basic',
  response_types: c.grant_types?.includes('authorization_code') ? ['code'] : [],
  redirect_uris: [],
  ...c,
}));

// Its own in-memory adapter, over a larger LRU than the 1,000 entries it defaults to (which would drop the
// codes minted for a round before they are redeemed).
const store = new LRU({ maxSize: 10_000_000 });

const provider = new Provider(PEER_ISSUER!, {
  adapter: (model: string) => new MemoryAdapter(model, store),
  clients,
  jwks: { keys: [jwk] },
  // The key is P-256: everything it signs is ES256 (the default, RS256, has no key here).
  clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'] },
  scopes: ['openid', 'offline_access', 'read', 'write'],
  findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: unknown, resource: string) =>
        resource === OPAQUE_AUDIENCE
          ? { scope: SCOPE, audience: OPAQUE_AUDIENCE, accessTokenTTL: 3600, accessTokenFormat: 'opaque' }
          : { scope: SCOPE, audience, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } },
    },
  },
  // Every code exchange by a client allowed refresh_token gets a refresh token, as Gatehouse's does.
  issueRefreshToken: (_ctx: unknown, client: Client) => client.grantTypeAllowed('refresh_token'),
  // Rotated on every use, as Gatehouse rotates (OAuth 2.1 §4.3.1).
  rotateRefreshToken: () => true,
  ttl: { AccessToken: 3600, AuthorizationCode: 3600, ClientCredentials: 3600, RefreshToken: 30 * 24 * 3600 },
});

const b64url = (n: number) => randomBytes(n).toString('base64url');
const s256 = (v: string) => createHash('sha256').update(v, 'ascii').digest('base64url');
const app = clients.find((c) => c.grant_types?.includes('authorization_code'));

/** n codes minted through the provider's models, as its interaction would mint them; the token-request bodies. */
async function mintCodes(n: number, resource: string): Promise<string[]> {
  if (!app) throw new Error('no client with authorization_code');
  const client = await provider.Client.find(app.client_id);
  const redirect = app.redirect_uris[0]!;
  const bodies: string[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i++) {
    const accountId = `user-${i % 1000}`;
    const grant = new provider.Grant({ accountId, clientId: app.client_id });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(resource, SCOPE);
    const grantId = await grant.save();
    const verifier = b64url(32);
    const code = await new provider.AuthorizationCode({
      accountId,
      grantId,
      client,
      scope: `offline_access ${SCOPE}`,
      resource,
      redirectUri: redirect,
      codeChallenge: s256(verifier),
      codeChallengeMethod: 'S256',
      authTime: now,
    }).save();
    bodies.push(
      `grant_type=authorization_code&code=${code}&code_verifier=${verifier}&redirect_uri=${encodeURIComponent(redirect)}`,
    );
  }
  return bodies;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

const callback = provider.callback();
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/bench/codes') {
    void readBody(req)
      .then(async (body) => {
        const { n, opaque } = JSON.parse(body) as { n: number; opaque?: boolean };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(await mintCodes(n, opaque ? OPAQUE_AUDIENCE : audience)));
      })
      .catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    return;
  }
  void callback(req, res);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`LISTENING ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
