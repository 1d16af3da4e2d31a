import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { DpopNonceSource } from './dpop.js';

/** A nonce is minted per slot of this many seconds and accepted in its slot and the next. */
export const NONCE_SLOT_SECONDS = 300;

// HKDF (RFC 5869) domain separation: the key-encryption secret yields an unrelated key here.
const SALT = 'gatehouse/dpop-nonce';
const INFO = 'gatehouse DPoP nonce HMAC-SHA-256 v1';

/**
 * Stateless DPoP nonces (RFC 9449 §8): HMAC-SHA-256 of the time slot under a key derived from a secret
 * every replica shares, so any replica accepts a nonce another issued and nothing is stored. A nonce
 * lives 5 to 10 minutes (its slot and the next). The value is base64url, within §8.1's NQCHAR.
 */
export function dpopNonces(secret: string): DpopNonceSource {
  const key = Buffer.from(hkdfSync('sha256', secret, SALT, INFO, 32));
  const cache = new Map<number, string>();
  const forSlot = (slot: number): string => {
    let nonce = cache.get(slot);
    if (nonce === undefined) {
      nonce = createHmac('sha256', key).update(`dpop-nonce:${slot}`).digest('base64url');
      if (cache.size > 4) cache.clear();
      cache.set(slot, nonce);
    }
    return nonce;
  };
  const slotOf = (now: number) => Math.floor(now / NONCE_SLOT_SECONDS);
  const same = (a: string, b: string) =>
    a.length === b.length && timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return {
    current: (now) => forSlot(slotOf(now)),
    isValid: (nonce, now) => {
      const slot = slotOf(now);
      return same(nonce, forSlot(slot)) || same(nonce, forSlot(slot - 1));
    },
  };
}
