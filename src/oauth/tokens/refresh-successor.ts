import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * A rotated refresh token's successor, sealed so that only the holder of the rotated token can open it.
 *
 * The grace window (docs/refresh-tokens.md) answers a client's retry of the token it just rotated with the
 * same successor the lost answer carried, so a retry never forks the chain and a late commit of an
 * abandoned rotation changes nothing the client sees. Tokens are stored only as SHA-256 hashes, so the
 * successor is kept encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the rotated token's
 * own value: the database holds its hash, never the value, so a copy of the database opens nothing.
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** HKDF's info: binds the key to this one use of the token value (the stored hash is a different function). */
const INFO = Buffer.from('gatehouse refresh-token successor v1', 'utf8');
const NO_SALT = Buffer.alloc(0);

function keyOf(presented: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(presented, 'utf8'), NO_SALT, INFO, 32));
}

/** Seals `successor` under a key only `presented` (the token being rotated) derives; base64url. */
export function sealSuccessor(presented: string, successor: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyOf(presented), iv);
  const body = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** Opens a sealed successor with the rotated token's value; undefined when it does not open (wrong token, altered). */
export function openSuccessor(presented: string, sealed: string): string | undefined {
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(presented), raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    return undefined;
  }
}
