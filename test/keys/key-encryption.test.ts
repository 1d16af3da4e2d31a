import t from 'tap';
import type { Config } from '../../src/config/index.js';
import { buildApp } from '../../src/app.js';
import { KeyConfigurationError, KeyDecryptionError } from '../../src/keys/errors.js';
import { INSECURE_DEVELOPMENT_SECRET, KeyCipher, keyEncryptionSecret } from '../../src/keys/key-encryption.js';
import { KeyStore } from '../../src/services/signing-keys/key-store.js';
import { testConfig } from '../helper.js';
import { emptyKeyTable, silent } from './fixtures/keys.js';

const SECRET = 'a-long-random-key-encryption-secret-0123456789';
const PLAINTEXT = JSON.stringify({ kty: 'EC', crv: 'P-256', d: 'private-scalar-value' });

function flipChar(segment: string, index: number): string {
  const c = segment[index]!;
  return segment.slice(0, index) + (c === 'A' ? 'B' : 'A') + segment.slice(index + 1);
}

t.test('encryption round-trips and produces a versioned base64url string with a fresh IV each time', async (t) => {
  const cipher = new KeyCipher(SECRET);
  const a = cipher.encrypt('kid-1', PLAINTEXT);
  const b = cipher.encrypt('kid-1', PLAINTEXT);
  t.match(a, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/, 'v1.<96-bit iv>.<ciphertext>.<128-bit tag>');
  t.not(a, b, 'a random IV makes every ciphertext different');
  t.notMatch(a, /private-scalar-value/);
  t.equal(cipher.decrypt('kid-1', a), PLAINTEXT);
  t.equal(new KeyCipher(SECRET).decrypt('kid-1', b), PLAINTEXT, 'the key is derived deterministically from the secret');
});

t.test('a tampered, moved, truncated or foreign ciphertext fails loudly', async (t) => {
  const cipher = new KeyCipher(SECRET);
  const sealed = cipher.encrypt('kid-1', PLAINTEXT);
  const [v, iv, body, tag] = sealed.split('.') as [string, string, string, string];
  const cases: Array<[string, string, string]> = [
    ['ciphertext altered', 'kid-1', [v, iv, flipChar(body, 3), tag].join('.')],
    ['tag altered', 'kid-1', [v, iv, body, flipChar(tag, 2)].join('.')],
    ['iv altered', 'kid-1', [v, flipChar(iv, 1), body, tag].join('.')],
    ['moved to another kid (AAD)', 'kid-2', sealed],
  ];
  for (const [label, kid, value] of cases) {
    t.throws(
      () => cipher.decrypt(kid, value),
      new KeyDecryptionError(
        `cannot decrypt signing key ${kid}: KEY_ENCRYPTION_SECRET is not the secret it was encrypted with, or the stored key was altered`,
      ),
      label,
    );
  }
  t.throws(
    () => cipher.decrypt('kid-1', [v, iv, body, tag.slice(0, 8)].join('.')),
    KeyDecryptionError,
    'a truncated tag is refused',
  );
  t.throws(() => cipher.decrypt('kid-1', `v9.${iv}.${body}.${tag}`), {
    name: 'KeyDecryptionError',
    message: /unknown format/,
  });
  t.throws(() => cipher.decrypt('kid-1', 'not-a-ciphertext'), {
    name: 'KeyDecryptionError',
    message: /unknown format/,
  });
});

t.test('the wrong secret names KEY_ENCRYPTION_SECRET and never echoes the secret or the key', async (t) => {
  const sealed = new KeyCipher(SECRET).encrypt('kid-1', PLAINTEXT);
  const wrong = new KeyCipher('another-secret-of-reasonable-length-9876543210');
  let error: unknown;
  try {
    wrong.decrypt('kid-1', sealed);
  } catch (err) {
    error = err;
  }
  t.type(error, KeyDecryptionError);
  t.type(error, KeyConfigurationError, 'a configuration error: startup stops instead of retrying');
  const message = (error as Error).message;
  t.match(message, /KEY_ENCRYPTION_SECRET/);
  t.notMatch(message, /another-secret|a-long-random|private-scalar/);
});

t.test('an empty secret uses the development secret with one warning, and is refused in production', async (t) => {
  const warnings: string[] = [];
  const logger = { warn: (msg: string) => warnings.push(msg) };
  const dev = { nodeEnv: 'development', keys: { encryptionSecret: '' } } as Pick<Config, 'keys' | 'nodeEnv'>;
  t.equal(keyEncryptionSecret(dev, logger), INSECURE_DEVELOPMENT_SECRET);
  t.equal(keyEncryptionSecret(dev, logger), INSECURE_DEVELOPMENT_SECRET);
  t.equal(warnings.length, 1, 'warned once per process');
  t.match(warnings[0], /KEY_ENCRYPTION_SECRET is empty/);
  t.match(INSECURE_DEVELOPMENT_SECRET, /insecure-development/, 'clearly named');
  const set = { nodeEnv: 'development', keys: { encryptionSecret: SECRET } } as Pick<Config, 'keys' | 'nodeEnv'>;
  t.equal(keyEncryptionSecret(set, logger), SECRET);
  const prod = { nodeEnv: 'production', keys: { encryptionSecret: '' } } as Pick<Config, 'keys' | 'nodeEnv'>;
  t.throws(
    () => keyEncryptionSecret(prod, logger),
    new KeyConfigurationError('KEY_ENCRYPTION_SECRET is required in production'),
  );
});

t.test(
  'stored keys opened with a different KEY_ENCRYPTION_SECRET stop the store and the app from starting',
  async (t) => {
    const handle = await emptyKeyTable();
    const first = await KeyStore.open(handle, testConfig(), silent, { background: false });
    await first.close();
    const other = testConfig({ KEY_ENCRYPTION_SECRET: 'a-different-secret-for-this-test-4242424242' });
    await t.rejects(KeyStore.open(handle, other, silent, { background: false }), {
      name: 'KeyDecryptionError',
      message: /KEY_ENCRYPTION_SECRET/,
    });
    await t.rejects(
      buildApp(other, { database: handle }),
      { name: 'KeyDecryptionError', message: /KEY_ENCRYPTION_SECRET/ },
      'even though the app otherwise retries an unready database',
    );
    const rows = await handle.db.selectFrom('signing_keys').select('kid').execute();
    t.equal(rows.length, 1, 'no replacement key was generated over the unreadable one');
  },
);
