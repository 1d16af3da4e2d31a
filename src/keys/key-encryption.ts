import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Config } from '../config/index.js';
import { KeyConfigurationError, KeyDecryptionError } from './errors.js';

/** Prefix of every ciphertext, so a later scheme can be told apart and old rows still read. */
const VERSION = 'v1';
// HKDF (RFC 5869) domain separation: a secret reused elsewhere still yields an unrelated key here.
const SALT = 'gatehouse/signing-key-encryption';
const INFO = 'gatehouse signing-key AES-256-GCM v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Used only outside production when KEY_ENCRYPTION_SECRET is empty. Public by design: keys encrypted
 * under it are not protected. Config refuses secrets starting with "gatehouse" in production.
 */
export const INSECURE_DEVELOPMENT_SECRET = 'gatehouse-insecure-development-key-encryption-secret';

let warnedAboutDevelopmentSecret = false;

interface WarnLogger {
  warn(msg: string): void;
}

/** KEY_ENCRYPTION_SECRET, or the development secret (with one warning per process) when it is empty. */
export function keyEncryptionSecret(config: Pick<Config, 'keys' | 'nodeEnv'>, logger: WarnLogger): string {
  if (config.keys.encryptionSecret !== '') return config.keys.encryptionSecret;
  if (config.nodeEnv === 'production')
    throw new KeyConfigurationError('KEY_ENCRYPTION_SECRET is required in production');
  if (!warnedAboutDevelopmentSecret) {
    warnedAboutDevelopmentSecret = true;
    logger.warn(
      'KEY_ENCRYPTION_SECRET is empty: signing keys are encrypted with a public development secret; set it before storing keys you care about',
    );
  }
  return INSECURE_DEVELOPMENT_SECRET;
}

/** AES-256-GCM encryption of private keys at rest, with the kid bound as additional authenticated data. */
export class KeyCipher {
  readonly #key: Buffer;

  constructor(secret: string) {
    if (secret === '') throw new KeyConfigurationError('KEY_ENCRYPTION_SECRET is empty');
    this.#key = Buffer.from(hkdfSync('sha256', secret, SALT, INFO, 32));
  }

  /** `v1.<iv>.<ciphertext>.<tag>`, each part base64url. */
  encrypt(kid: string, plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    // The kid as AAD stops a ciphertext being moved onto another key's row.
    cipher.setAAD(Buffer.from(kid, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      VERSION,
      iv.toString('base64url'),
      body.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
    ].join('.');
  }

  /** The plaintext, or a KeyDecryptionError naming KEY_ENCRYPTION_SECRET. */
  decrypt(kid: string, encrypted: string): string {
    const [version, iv64, body64, tag64, ...rest] = encrypted.split('.');
    if (version !== VERSION || iv64 === undefined || body64 === undefined || tag64 === undefined || rest.length > 0) {
      throw new KeyDecryptionError(`signing key ${kid} is stored in an unknown format (expected ${VERSION})`);
    }
    const iv = Buffer.from(iv64, 'base64url');
    const tag = Buffer.from(tag64, 'base64url');
    // A short tag would weaken GCM's integrity check; only the full 128 bits are accepted.
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
      throw new KeyDecryptionError(`signing key ${kid} is stored in a malformed ${VERSION} format`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(kid, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(body64, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new KeyDecryptionError(
        `cannot decrypt signing key ${kid}: KEY_ENCRYPTION_SECRET is not the secret it was encrypted with, or the stored key was altered`,
      );
    }
  }
}
