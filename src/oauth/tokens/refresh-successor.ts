import { createHmac } from 'node:crypto';
import { TOKEN_BYTES } from '../secrets.js';

/**
 * A rotated refresh token's successor, sealed so that only the holder of the rotated token can open it.
 *
 * The grace window (docs/refresh-tokens.md) answers a client's retry of the token it just rotated with the
 * same successor the lost answer carried, so a retry never forks the chain and a late commit of an
 * abandoned rotation changes nothing the client sees. Tokens are stored only as SHA-256 hashes, so the
 * successor (32 random bytes) is kept XORed with a pad of HMAC-SHA256 keyed by the rotated token's own
 * value. The database holds that value's SHA-256 hash, from which the HMAC cannot be computed, so a copy of
 * the database opens nothing. A token value is rotated at most once, so its pad covers one stored successor:
 * a one-time pad, one HMAC per rotation on the hot path. The seal needs no integrity of its own: an opened
 * value counts only if its hash is the live next generation of the same chain.
 */

const LABEL = 'gatehouse refresh-token successor v1';

function pad(presented: string): Buffer {
  return createHmac('sha256', presented).update(LABEL).digest();
}

function xor(value: Buffer, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(value.length);
  for (let i = 0; i < value.length; i++) out[i] = value[i]! ^ key[i]!;
  return out;
}

/** Seals `successor` (a generated token) under a pad only `presented` (the token being rotated) derives; base64url. */
export function sealSuccessor(presented: string, successor: string): string {
  const raw = Buffer.from(successor, 'base64url');
  if (raw.length !== TOKEN_BYTES) throw new Error('a successor is a generated token (32 bytes)');
  return xor(raw, pad(presented)).toString('base64url');
}

/**
 * Opens a sealed successor with the presented token's value: the successor when `presented` is the token
 * that was rotated, an unrelated value otherwise (the caller checks it against the chain), or undefined
 * when `sealed` has the wrong length.
 */
export function openSuccessor(presented: string, sealed: string): string | undefined {
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length !== TOKEN_BYTES) return undefined;
  return xor(raw, pad(presented)).toString('base64url');
}
