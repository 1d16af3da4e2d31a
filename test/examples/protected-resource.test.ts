import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CryptoKey,
  type JWK,
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
} from 'jose';
import t from 'tap';
import { ProtectedResource, type ResourceRequest } from '../../examples/protected-resource/protected-resource.js';

/**
 * The reusable resource-server module on its own, offline: tokens signed by a key of a JWK Set (served
 * over HTTP once, then cached), Bearer and DPoP presentation, every refusal's status and challenge, and
 * the RFC 9728 metadata.
 */

const ISSUER = 'https://auth.example.com';
const RESOURCE = 'https://api.example.com/v1';
const ALGS = 'ES256 ES384 EdDSA Ed25519 RS256 PS256';
const METADATA_URL = 'https://api.example.com/.well-known/oauth-protected-resource/v1';

const signing = await generateKeyPair('ES256', { extractable: true });
const jwks = { keys: [{ ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };

// The JWKS over HTTP, counting fetches: verification is offline after the first.
let jwksFetches = 0;
const jwksServer = createServer((_req, res) => {
  jwksFetches++;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));
const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;

interface Holder {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}
async function holder(): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** An access token as Gatehouse issues it (RFC 9068), optionally DPoP-bound. */
function accessToken(claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: ISSUER,
    sub: 'alice',
    aud: RESOURCE,
    client_id: 'app',
    scope: 'read',
    iat: now,
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
    .sign(signing.privateKey);
}

let jtis = 0;
function proof(key: Holder, token: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({
    jti: `j${++jtis}`,
    htm: 'GET',
    htu: RESOURCE,
    iat: Math.floor(Date.now() / 1000),
    ath: createHash('sha256').update(token).digest('base64url'),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .sign(key.privateKey);
}

function request(headers: Record<string, string | string[]>, method = 'GET', url = RESOURCE): ResourceRequest {
  return { method, url, headers };
}

const resource = new ProtectedResource({ issuer: ISSUER, resource: RESOURCE, jwksUri, scopesSupported: ['read'] });

t.test('Bearer: a valid token passes, offline after one JWKS fetch', async (t) => {
  const token = await accessToken();
  for (let i = 0; i < 3; i++) {
    const result = await resource.authenticate(request({ authorization: `Bearer ${token}` }), ['read']);
    t.ok(result.ok, 'accepted');
    if (result.ok) {
      t.equal(result.token.sub, 'alice');
      t.equal(result.token.scheme, 'Bearer');
      t.same(result.token.scopes, ['read']);
      t.notOk(result.token.jkt);
    }
  }
  t.equal(jwksFetches, 1, 'the key set was fetched once');
});

t.test('no token: 401 offering both schemes, with algs and resource_metadata', async (t) => {
  for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }] as Array<Record<string, string>>) {
    const result = await resource.authenticate(request(headers));
    t.notOk(result.ok);
    if (result.ok) continue;
    t.equal(result.refusal.status, 401);
    t.same(result.refusal.headers['www-authenticate'], [
      `Bearer resource_metadata="${METADATA_URL}"`,
      `DPoP algs="${ALGS}", resource_metadata="${METADATA_URL}"`,
    ]);
    t.equal(result.refusal.headers['cache-control'], 'no-store');
  }
});

t.test('403 insufficient_scope names the scopes, under the scheme used', async (t) => {
  const token = await accessToken({ scope: 'write' });
  const result = await resource.authenticate(request({ authorization: `Bearer ${token}` }), ['read']);
  t.notOk(result.ok);
  if (result.ok) return;
  t.equal(result.refusal.status, 403);
  t.same(result.refusal.headers['www-authenticate'], [
    `Bearer error="insufficient_scope", scope="read", resource_metadata="${METADATA_URL}"`,
  ]);
  t.equal(result.refusal.body.error, 'insufficient_scope');

  const key = await holder();
  const bound = await accessToken({ scope: 'write', cnf: { jkt: key.jkt } });
  const dpop = await resource.authenticate(request({ authorization: `DPoP ${bound}`, dpop: await proof(key, bound) }), [
    'read',
  ]);
  t.notOk(dpop.ok);
  if (dpop.ok) return;
  t.equal(dpop.refusal.status, 403);
  t.same(dpop.refusal.headers['www-authenticate'], [
    `DPoP error="insufficient_scope", scope="read", algs="${ALGS}", resource_metadata="${METADATA_URL}"`,
  ]);
});

t.test('DPoP: a bound token with a proof by its key passes; every broken proof is refused', async (t) => {
  const key = await holder();
  const other = await holder();
  const token = await accessToken({ cnf: { jkt: key.jkt } });
  const good = await resource.authenticate(request({ authorization: `DPoP ${token}`, dpop: await proof(key, token) }));
  t.ok(good.ok, 'accepted');
  if (good.ok) {
    t.equal(good.token.scheme, 'DPoP');
    t.equal(good.token.jkt, key.jkt);
  }
  const post = await resource.authenticate(
    request(
      { authorization: `dpop ${token}`, dpop: await proof(key, token, { htm: 'POST' }) },
      'POST',
      `${RESOURCE}?q=1`,
    ),
  );
  t.ok(post.ok, 'POST, scheme case-insensitive, query ignored in htu');

  const replayed = await proof(key, token);
  t.ok((await resource.authenticate(request({ authorization: `DPoP ${token}`, dpop: replayed }))).ok, 'first use');
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, Record<string, string | string[]>, string, RegExp]> = [
    ['no proof', { authorization: `DPoP ${token}` }, 'invalid_dpop_proof', /proof is required/],
    ['replayed proof', { authorization: `DPoP ${token}`, dpop: replayed }, 'invalid_dpop_proof', /already used/],
    [
      'two proofs',
      { authorization: `DPoP ${token}`, dpop: [await proof(key, token), await proof(key, token)] },
      'invalid_dpop_proof',
      /exactly one/,
    ],
    ['another key', { authorization: `DPoP ${token}`, dpop: await proof(other, token) }, 'invalid_token', /bound to/],
    [
      'ath of another token',
      { authorization: `DPoP ${token}`, dpop: await proof(key, await accessToken()) },
      'invalid_dpop_proof',
      /ath/,
    ],
    [
      'htm POST on a GET',
      { authorization: `DPoP ${token}`, dpop: await proof(key, token, { htm: 'POST' }) },
      'invalid_dpop_proof',
      /htm/,
    ],
    [
      'htu of another API',
      { authorization: `DPoP ${token}`, dpop: await proof(key, token, { htu: 'https://api.example.com/v2' }) },
      'invalid_dpop_proof',
      /htu/,
    ],
    [
      'old iat',
      { authorization: `DPoP ${token}`, dpop: await proof(key, token, { iat: now - 600 }) },
      'invalid_dpop_proof',
      /iat/,
    ],
    ['a bound token as Bearer', { authorization: `Bearer ${token}` }, 'invalid_token', /DPoP-bound/],
    [
      'an unbound token as DPoP',
      { authorization: `DPoP ${await accessToken()}`, dpop: await proof(key, token) },
      'invalid_token',
      /not DPoP-bound/,
    ],
  ];
  for (const [name, headers, error, description] of cases) {
    const result = await resource.authenticate(request(headers));
    t.notOk(result.ok, name);
    if (result.ok) continue;
    t.equal(result.refusal.status, 401, name);
    t.equal(result.refusal.body.error, error, name);
    t.match(result.refusal.body.error_description, description, name);
    const [challenge] = result.refusal.headers['www-authenticate'] as string[];
    t.match(
      challenge,
      new RegExp(`^DPoP error="${error}", error_description="[^"]+", algs="${ALGS}", resource_metadata=`),
      `${name}: a DPoP challenge (RFC 9449 §7.1)`,
    );
  }
});

t.test('dpop required: Bearer refused, metadata says so', async (t) => {
  const strict = new ProtectedResource({
    issuer: ISSUER,
    resource: RESOURCE,
    keys: createLocalJWKSet(jwks),
    dpop: 'required',
  });
  const result = await strict.authenticate(request({ authorization: `Bearer ${await accessToken()}` }));
  t.notOk(result.ok);
  if (!result.ok) t.match((result.refusal.headers['www-authenticate'] as string[])[0], /^DPoP error="invalid_token"/);
  const none = await strict.authenticate(request({}));
  if (!none.ok)
    t.same(none.refusal.headers['www-authenticate'], [`DPoP algs="${ALGS}", resource_metadata="${METADATA_URL}"`]);
  t.same(strict.metadata(), {
    resource: RESOURCE,
    authorization_servers: [ISSUER],
    scopes_supported: [],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: ALGS.split(' '),
    dpop_bound_access_tokens_required: true,
  });
});

t.test('RFC 9728 metadata and its URL', async (t) => {
  t.equal(resource.metadataUrl, METADATA_URL);
  t.same(resource.metadata(), {
    resource: RESOURCE,
    authorization_servers: [ISSUER],
    scopes_supported: ['read'],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: ALGS.split(' '),
  });
});

t.test('keys that cannot be fetched: 503, the client keeps its token', async (t) => {
  const orphan = new ProtectedResource({ issuer: ISSUER, resource: RESOURCE, jwksUri: 'http://127.0.0.1:1/jwks.json' });
  const result = await orphan.authenticate(request({ authorization: `Bearer ${await accessToken()}` }));
  t.notOk(result.ok);
  if (result.ok) return;
  t.equal(result.refusal.status, 503);
  t.equal(result.refusal.headers['retry-after'], '5');
  t.notOk(result.refusal.headers['www-authenticate']);
});
