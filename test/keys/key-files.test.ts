import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  jwtVerify,
} from 'jose';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { KeyConfigurationError, KeyOperationError } from '../../src/keys/errors.js';
import { KeyStore } from '../../src/services/signing-keys/key-store.js';
import { buildTestApp, testConfig } from '../helper.js';
import { PRIVATE_MEMBERS, emptyKeyTable, silent } from './fixtures/keys.js';

async function keyFiles(dir: string) {
  const ec = await generateKeyPair('ES256', { extractable: true });
  const ecPem = join(dir, 'ec.pem');
  writeFileSync(ecPem, await exportPKCS8(ec.privateKey));
  const ecKid = await calculateJwkThumbprint(await exportJWK(ec.publicKey));

  const rsa = await generateKeyPair('PS256', { extractable: true });
  const rsaJwk = { ...(await exportJWK(rsa.privateKey)), alg: 'PS256', kid: 'rsa-from-file', use: 'sig' };
  const rsaFile = join(dir, 'rsa.jwk.json');
  writeFileSync(rsaFile, JSON.stringify(rsaJwk));

  const ed = await generateKeyPair('EdDSA', { extractable: true });
  const edJwk = { ...(await exportJWK(ed.privateKey)), alg: 'EdDSA' };
  const edFile = join(dir, 'ed.json');
  writeFileSync(edFile, JSON.stringify(edJwk));
  const edKid = await calculateJwkThumbprint(await exportJWK(ed.publicKey));
  return { ecPem, ecKid, rsaFile, rsaJwk, edFile, edKid };
}

t.test('SIGNING_KEY_FILES: the first key signs, every key is published, nothing touches the database', async (t) => {
  const handle = await emptyKeyTable();
  const f = await keyFiles(t.testdir());
  const config = testConfig({ SIGNING_KEY_FILES: ` ${f.ecPem}, ${f.rsaFile},${f.edFile}`, SIGNING_ALG: 'ES256' });
  const store = await KeyStore.open(handle, config, silent);
  t.teardown(() => store.close());

  t.match(
    store.current(),
    { kid: f.ecKid, alg: 'ES256' },
    'the PEM key signs, with SIGNING_ALG and its thumbprint as kid',
  );
  t.equal(store.current().key.extractable, false);
  t.same(
    store.jwks().keys.map((k) => [k.kid, k.alg]),
    [
      [f.ecKid, 'ES256'],
      ['rsa-from-file', 'PS256'],
      [f.edKid, 'EdDSA'],
    ],
    'a JWK keeps its own kid and alg',
  );
  t.match(await store.list(), [
    { kid: f.ecKid, state: 'active', source: 'file', published: true },
    { kid: 'rsa-from-file', state: 'published', source: 'file' },
    { kid: f.edKid, state: 'published', source: 'file' },
  ]);
  t.equal(store.readiness(), null);
  await t.rejects(store.rotate(), KeyOperationError);
  await t.rejects(store.retire(f.ecKid), { name: 'KeyOperationError', message: /SIGNING_KEY_FILES/ });
  t.equal(
    (await handle.db.selectFrom('signing_keys').select('kid').execute()).length,
    0,
    'no key generated in the database',
  );
});

t.test('file keys are served by the JWKS endpoint and verify tokens from each of them', async (t) => {
  await emptyKeyTable();
  const f = await keyFiles(t.testdir());
  const app = await buildTestApp(t, { SIGNING_KEY_FILES: `${f.ecPem},${f.rsaFile}` });
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  t.equal(res.statusCode, 200);
  const set = res.json<{ keys: Array<Record<string, unknown>> }>();
  for (const key of set.keys)
    for (const member of PRIVATE_MEMBERS) t.notOk(member in key, `no ${member} in ${String(key.kid)}`);

  const signer = app.keys.current();
  const active = await new SignJWT({})
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid })
    .setExpirationTime('5m')
    .sign(signer.key);
  // A key only published (say, the previous one after an operator swapped the files) still verifies.
  const previous = await new SignJWT({})
    .setProtectedHeader({ alg: 'PS256', kid: 'rsa-from-file' })
    .setExpirationTime('5m')
    .sign(await importJWK(f.rsaJwk, 'PS256'));
  const jwks = createLocalJWKSet(set);
  t.equal((await jwtVerify(active, jwks)).protectedHeader.kid, f.ecKid);
  t.equal((await jwtVerify(previous, jwks)).protectedHeader.kid, 'rsa-from-file');
});

t.test('a bad key file stops startup with an error naming the file and never quoting the key', async (t) => {
  const handle = await emptyKeyTable();
  const dir = t.testdir();
  const f = await keyFiles(dir);
  const write = (name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, body);
    return path;
  };
  const other = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
  const ecJwk = JSON.parse(
    JSON.stringify(await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)),
  );
  const otherRsa = await exportJWK((await generateKeyPair('PS256', { extractable: true })).publicKey);
  const pkcs1 = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;

  const cases: Array<[string, string, RegExp, string?]> = [
    ['missing file', join(dir, 'nope.pem'), /nope\.pem cannot be read: ENOENT$/],
    ['not a key', write('junk.txt', 'hello there'), /junk\.txt is neither a PEM PKCS#8 private key nor a JWK$/],
    [
      'broken JSON holding a secret',
      write('broken.json', '{"d": "TOPSECRETVALUE",'),
      /broken\.json is not valid JSON$/,
    ],
    [
      'public JWK only',
      write('public.json', JSON.stringify({ ...other, alg: 'ES256' })),
      /public\.json holds no private key/,
    ],
    [
      'unsupported alg',
      write('hs.json', JSON.stringify({ kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' })),
      /hs\.json has alg "HS256"; supported: ES256, RS256, PS256, EdDSA/,
    ],
    [
      'encryption key',
      write('enc.json', JSON.stringify({ ...ecJwk, alg: 'ES256', use: 'enc' })),
      /enc\.json is for use "enc", not "sig"/,
    ],
    [
      'mismatched EC halves',
      write('mixed.json', JSON.stringify({ ...ecJwk, x: other.x, y: other.y, alg: 'ES256' })),
      /mixed\.json is not a usable ES256 private key: /,
    ],
    // An RSA key whose modulus belongs to another key: refused at import or by the sign-and-verify check.
    [
      'mismatched RSA halves',
      write('mixed-rsa.json', JSON.stringify({ ...f.rsaJwk, n: otherRsa.n, kid: 'x' })),
      // Node 20 imports the mismatched halves and the self-signature check refuses them; Node 22+ refuses
      // them at import. Either way the file is named and the key refused.
      /mixed-rsa\.json (holds a key whose public part does not verify its own PS256 signature|is not a usable PS256 private key: Invalid keyData)$/,
    ],
    ['PEM under the wrong SIGNING_ALG', f.ecPem, /ec\.pem is not a usable RS256 private key \(SIGNING_ALG\)/, 'RS256'],
    ['PKCS#1 PEM', write('rsa1.pem', pkcs1), /rsa1\.pem is a PKCS#1\/SEC1 key; convert it with `openssl pkcs8/],
  ];
  for (const [label, path, message, alg] of cases) {
    const config = testConfig({ SIGNING_KEY_FILES: `${f.edFile},${path}`, ...(alg ? { SIGNING_ALG: alg } : {}) });
    let error: unknown;
    try {
      await KeyStore.open(handle, config, silent);
    } catch (err) {
      error = err;
    }
    t.type(error, KeyConfigurationError, label);
    t.match((error as Error).message, /^SIGNING_KEY_FILES: /, `${label}: names the setting`);
    t.match((error as Error).message, message, `${label}: names the file and the problem`);
    t.notMatch((error as Error).message, /TOPSECRETVALUE|PRIVATE KEY-----/, `${label}: does not quote the key`);
  }

  const dup = write('dup.json', JSON.stringify({ ...ecJwk, alg: 'ES256', kid: 'rsa-from-file' }));
  await t.rejects(KeyStore.open(handle, testConfig({ SIGNING_KEY_FILES: `${f.rsaFile},${dup}` }), silent), {
    message: /dup\.json has the same kid \(rsa-from-file\) as .*rsa\.jwk\.json/,
  });
  await t.rejects(
    buildApp(testConfig({ SIGNING_KEY_FILES: join(dir, 'nope.pem') }), { database: handle }),
    { name: 'KeyConfigurationError', message: /nope\.pem/ },
    'the app refuses to start',
  );
});
