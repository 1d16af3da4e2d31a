import { SignJWT, calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import type { SigningAlg } from '../../src/config/index.js';
import { KeyStore } from '../../src/services/signing-keys/key-store.js';
import { buildTestApp, testConfig } from '../helper.js';
import { PRIVATE_MEMBERS, emptyKeyTable, silent } from './fixtures/keys.js';
import { ISSUER } from '../kit/issuer.js';

const PUBLIC_SHAPE: Record<SigningAlg, { kty: string; members: string[]; crv?: string }> = {
  ES256: { kty: 'EC', crv: 'P-256', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] },
  RS256: { kty: 'RSA', members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] },
  PS256: { kty: 'RSA', members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x'] },
};

for (const alg of Object.keys(PUBLIC_SHAPE) as SigningAlg[]) {
  t.test(
    `${alg}: generated on first start, stored encrypted, reloaded, signs tokens the served JWKS verifies`,
    async (t) => {
      const handle = await emptyKeyTable();
      const env = { SIGNING_ALG: alg, JWKS_MAX_AGE_SECONDS: '120' };
      const shape = PUBLIC_SHAPE[alg];

      const first = await KeyStore.open(handle, testConfig(env), silent, { background: false });
      const { kid } = first.current();
      await first.close();

      const rows = await handle.db.selectFrom('signing_keys').selectAll().execute();
      t.equal(rows.length, 1, 'one key generated');
      const row = rows[0]!;
      t.match(row, { kid, alg, state: 'active' });
      t.ok(row.activated_at, 'activation recorded');
      t.match(row.private_key_enc, /^v1\./, 'private key stored encrypted');
      t.notMatch(row.private_key_enc, /"d"|"kty"/, 'no plaintext JWK in the column');
      t.same(
        Object.keys(row.public_jwk).sort(),
        shape.members.filter((m) => !['alg', 'kid', 'use'].includes(m)),
        'public_jwk holds public members only',
      );
      t.equal(kid, await calculateJwkThumbprint(row.public_jwk as never), 'kid is the RFC 7638 thumbprint');
      if (shape.kty === 'RSA')
        t.equal(Buffer.from(String(row.public_jwk.n), 'base64url').length, 256, '2048-bit modulus');

      // A fresh process: the app's own store must load the stored key, not make another.
      const app = await buildTestApp(t, env);
      const signer = app.keys.current();
      t.equal(signer.kid, kid, 'reloaded from the database');
      t.equal(signer.alg, alg);
      t.equal(signer.key.extractable, false, 'the imported private key cannot be exported');
      t.equal(app.keys.current(), signer, 'current() hands out the same cached signer');
      t.equal((await handle.db.selectFrom('signing_keys').select('kid').execute()).length, 1, 'no second key');

      const token = await new SignJWT({ scope: 'read' })
        .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' })
        .setIssuer(ISSUER)
        .setSubject('user-1')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signer.key);

      const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      t.equal(res.statusCode, 200);
      t.equal(res.headers['cache-control'], 'public, max-age=120');
      t.equal(res.headers['access-control-allow-origin'], '*');
      t.match(res.headers['content-type'], /^application\/json/);
      const set = res.json<{ keys: Array<Record<string, unknown>> }>();
      t.same(Object.keys(set), ['keys']);
      t.equal(set.keys.length, 1);
      for (const key of set.keys) {
        for (const member of PRIVATE_MEMBERS) t.notOk(member in key, `no private member ${member}`);
        t.same(Object.keys(key).sort(), shape.members, 'exactly the public members plus kid, alg, use');
        t.match(key, { kty: shape.kty, kid, alg, use: 'sig', ...(shape.crv ? { crv: shape.crv } : {}) });
      }

      const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(set as never), {
        issuer: ISSUER,
        typ: 'at+jwt',
      });
      t.equal(payload.sub, 'user-1');
      t.equal(protectedHeader.kid, kid);
    },
  );
}

t.test('readiness reports the signing key', async (t) => {
  await emptyKeyTable();
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 200);
  t.equal(res.json().checks.signing_keys, 'ok');
  t.equal(app.keys.readiness(), null);
});

t.test('the JWKS answers HEAD and refuses other methods', async (t) => {
  await emptyKeyTable();
  const app = await buildTestApp(t);
  const head = await app.inject({ method: 'HEAD', url: '/.well-known/jwks.json' });
  t.equal(head.statusCode, 200);
  const post = await app.inject({ method: 'POST', url: '/.well-known/jwks.json' });
  t.equal(post.statusCode, 405);
});
