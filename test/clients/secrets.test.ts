import * as crypto from 'node:crypto';
import t from 'tap';
import {
  generateClientId,
  generateClientSecret,
  generateJwtId,
  generateToken,
  hashSecret,
  isSecretHash,
  verifySecret,
} from '../../src/oauth/secrets.js';

t.test('generated ids, secrets and tokens are 256-bit base64url, all different', async (t) => {
  const values = new Set<string>();
  for (let i = 0; i < 200; i++) {
    for (const value of [generateToken(), generateClientId(), generateClientSecret()]) values.add(value);
  }
  t.ok(
    [...values].every((v) => /^[A-Za-z0-9_-]{43}$/.test(v)),
    'unpadded base64url of 32 bytes',
  );
  t.equal(values.size, 600, 'no repeats');
  t.equal(Buffer.from(generateClientSecret(), 'base64url').length, 32, '256 bits');
  // Every base64url character shows up across many values: the output is not drawn from a small alphabet.
  t.equal(new Set([...values].join('')).size, 64);
});

t.test('the stored form is SHA-256 in base64url', async (t) => {
  const secret = generateClientSecret();
  const hash = hashSecret(secret);
  t.equal(hash, crypto.createHash('sha256').update(secret).digest('base64url'));
  t.ok(isSecretHash(hash));
  t.not(hash, secret, 'the secret is not stored as is');
  for (const bad of ['', 'abc', `${hash}=`, `${hash.slice(0, 42)}+`, `${hash}A`, hash.replace(/./, '.')]) {
    t.notOk(isSecretHash(bad), `${JSON.stringify(bad)} is not a stored hash`);
  }
  // Non-canonical last character: decodes to the same bytes but is not what hashSecret produces.
  const last = hash.at(-1)!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
  t.notOk(isSecretHash(hash.slice(0, 42) + sibling), 'only the canonical encoding is accepted');
});

t.test('verifySecret accepts the secret and nothing else', async (t) => {
  const secret = generateClientSecret();
  const hash = hashSecret(secret);
  t.ok(verifySecret(secret, hash));
  t.notOk(verifySecret(generateClientSecret(), hash), 'another secret');
  t.notOk(verifySecret(`${secret} `, hash), 'one character more');
  t.notOk(verifySecret(secret.slice(1), hash), 'one character less');
  t.notOk(verifySecret('', hash), 'empty');
  t.notOk(verifySecret(secret, null), 'no stored hash');
  t.notOk(verifySecret(secret, 'short'), 'a malformed stored hash fails closed without throwing');
  t.notOk(verifySecret(hash, hash), 'the hash itself is not the secret');
});

t.test('every verification compares two 32-byte digests with timingSafeEqual', async (t) => {
  const calls: Array<[number, number]> = [];
  const mocked = await t.mockImport<typeof import('../../src/oauth/secrets.js')>('../../src/oauth/secrets.js', {
    'node:crypto': {
      ...crypto,
      timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
        calls.push([a.byteLength, b.byteLength]);
        return crypto.timingSafeEqual(a, b);
      },
    },
  });
  const secret = mocked.generateClientSecret();
  const hash = mocked.hashSecret(secret);
  t.ok(mocked.verifySecret(secret, hash));
  t.notOk(mocked.verifySecret('wrong', hash));
  t.notOk(mocked.verifySecret(`${secret}-a-much-longer-presented-value`, hash));
  t.notOk(mocked.verifySecret(secret, null));
  t.notOk(mocked.verifySecret(secret, 'not-a-hash'));
  t.same(
    calls,
    [
      [32, 32],
      [32, 32],
      [32, 32],
      [32, 32],
      [32, 32],
    ],
    'right, wrong, longer, missing and malformed all take the same path',
  );
});

t.test('generateJwtId: 128-bit base64url ids, all different across many pool refills', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const id = generateJwtId();
    if (!/^[A-Za-z0-9_-]{22}$/.test(id)) t.fail(`malformed jti ${id}`);
    seen.add(id);
  }
  t.equal(seen.size, 3000, 'no repeats across refills (4096-byte pool = 256 ids)');
});

t.test('secrets come from a pool of their own, refilled from the CSPRNG, never shared with JWT ids', async (t) => {
  const fills: number[] = [];
  let randomBytesCalls = 0;
  const mocked = await t.mockImport<typeof import('../../src/oauth/secrets.js')>('../../src/oauth/secrets.js', {
    'node:crypto': {
      ...crypto,
      randomFillSync: <T extends NodeJS.ArrayBufferView>(buffer: T) => {
        fills.push(buffer.byteLength);
        return crypto.randomFillSync(buffer);
      },
      randomBytes: (size: number) => {
        randomBytesCalls++;
        return crypto.randomBytes(size);
      },
    },
  });
  const tokens = new Set<string>();
  const filled = new Set<string>();
  for (let i = 0; i < 300; i++) {
    tokens.add(mocked.generateToken());
    const target = Buffer.alloc(32);
    mocked.fillSecretBytes(target);
    filled.add(target.toString('base64url'));
  }
  const ids = new Set(Array.from({ length: 300 }, () => mocked.generateJwtId()));
  t.equal(tokens.size + filled.size, 600, 'no secret repeats');
  t.equal([...tokens].filter((v) => filled.has(v)).length, 0, 'a token is never also filled bytes');
  t.notOk(
    [...filled].some((v) => Buffer.from(v, 'base64url').equals(Buffer.alloc(32))),
    'never the zeroed bytes',
  );
  // 600 secrets of 32 bytes: 5 fills of the 4096-byte pool (128 each), not one call per secret.
  t.same(fills, [4096, 4096, 4096, 4096, 4096]);
  // JWT ids come from their own pool (randomBytes), which secrets never touch.
  t.equal(randomBytesCalls, 2, '300 ids of 16 bytes: two 4096-byte pools');
  t.equal(ids.size, 300);
  t.throws(() => mocked.fillSecretBytes(Buffer.alloc(16)), RangeError);
});
