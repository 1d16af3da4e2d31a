import { CompactSign, compactVerify, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import t from 'tap';
import { importSigningKey } from '../../src/keys/key-generation.js';
import type { SigningAlg } from '../../src/config/index.js';
import { issueAccessToken } from '../../src/oauth/tokens/access-token.js';
import { issueIdToken } from '../../src/oauth/tokens/id-token.js';
import { signCompact } from '../../src/oauth/tokens/jws.js';

const ALGS: SigningAlg[] = ['ES256', 'RS256', 'PS256', 'EdDSA'];

async function keyPair(alg: SigningAlg) {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  // The key store's own import: a non-extractable WebCrypto key.
  const signing = await importSigningKey(await exportJWK(privateKey), alg);
  return { signing, publicKey };
}

for (const alg of ALGS) {
  t.test(`${alg}: node:crypto compact JWS verifies with jose and matches CompactSign's bytes`, async (t) => {
    const { signing, publicKey } = await keyPair(alg);
    const header = { alg, kid: 'k1', typ: 'at+jwt' };
    const payload = { iss: 'https://as.example', sub: 'ü-user', aud: ['a', 'b'], iat: 1, exp: 2 };
    const ours = signCompact(signing, header, payload);
    const { payload: bytes, protectedHeader } = await compactVerify(ours, publicKey, { algorithms: [alg] });
    t.same(protectedHeader, header);
    t.same(JSON.parse(new TextDecoder().decode(bytes)), payload);
    const theirs = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader(header)
      .sign(signing);
    // Header and payload segments are the same bytes; RS256 and Ed25519 signatures are deterministic too.
    t.equal(ours.split('.').slice(0, 2).join('.'), theirs.split('.').slice(0, 2).join('.'));
    if (alg === 'RS256' || alg === 'EdDSA') t.equal(ours, theirs);
    // ECDSA: the signature is R‖S (RFC 7518 §3.4), 64 bytes for P-256, never DER.
    if (alg === 'ES256') t.equal(Buffer.from(ours.split('.')[2]!, 'base64url').length, 64);
    // A second signature with the same key and header reuses the prepared key and header, still valid.
    const again = signCompact(signing, header, { ...payload, sub: 'other' });
    const second = await compactVerify(again, publicKey, { algorithms: [alg] });
    t.equal(JSON.parse(new TextDecoder().decode(second.payload)).sub, 'other');
  });
}

t.test('access and ID tokens signed with node:crypto verify with jose against the public JWK', async (t) => {
  const { signing, publicKey } = await keyPair('ES256');
  const jwk = await importJWK(await exportJWK(publicKey), 'ES256');
  const signer = { kid: 'k1', alg: 'ES256', key: signing };
  const issued = await issueAccessToken(signer, {
    issuer: 'https://as.example',
    subject: 'user',
    clientId: 'client',
    audience: ['https://api.example'],
    scopes: ['read'],
    ttlSeconds: 60,
    now: Math.floor(Date.now() / 1000),
  });
  const { payload, protectedHeader } = await jwtVerify(issued.token, jwk, {
    typ: 'at+jwt',
    issuer: 'https://as.example',
    audience: 'https://api.example',
  });
  t.equal(protectedHeader.kid, 'k1');
  t.equal(payload.jti, issued.jti);
  t.equal(payload.scope, 'read');
  const idToken = await issueIdToken(signer, {
    issuer: 'https://as.example',
    subject: 'user',
    clientId: 'client',
    ttlSeconds: 60,
    now: Math.floor(Date.now() / 1000),
    authTime: 1,
    accessToken: issued.token,
  });
  const id = await jwtVerify(idToken, jwk, { issuer: 'https://as.example', audience: 'client' });
  t.equal(id.protectedHeader.typ, undefined);
  t.equal(id.payload.azp, 'client');
});

t.test('an algorithm Gatehouse does not sign with is refused', async (t) => {
  const { signing } = await keyPair('ES256');
  t.throws(() => signCompact(signing, { alg: 'HS256' }, {}), /unsupported JWS algorithm HS256/);
});
