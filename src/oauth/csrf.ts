import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

// HKDF (RFC 5869) domain separation from the signing-key encryption key derived from the same secret.
const SALT = 'gatehouse/form-csrf';
const INFO = 'gatehouse form CSRF HMAC-SHA-256 v1';

/** An HMAC-SHA-256 digest in unpadded base64url is always 43 characters. */
const TOKEN_FORM = /^[A-Za-z0-9_-]{43}$/;

/**
 * CSRF tokens for Gatehouse's forms: an HMAC over the form's purpose, the browser session and the pending
 * request, so a token is worthless in another session or for another request. The key is derived from
 * KEY_ENCRYPTION_SECRET, so every replica computes the same token and a form may be posted to any of them;
 * nothing is stored.
 */
export class CsrfTokens {
  readonly #key: Buffer;

  constructor(secret: string) {
    if (secret === '') throw new Error('the CSRF key needs a non-empty secret');
    this.#key = Buffer.from(hkdfSync('sha256', secret, SALT, INFO, 32));
  }

  /** The token for a form (`purpose`) shown to a session (`sessionHash`) for a pending request. */
  issue(purpose: string, sessionHash: string, requestId: string): string {
    // Length-prefixed, so no two different triples share an input.
    const input = [purpose, sessionHash, requestId].map((part) => `${Buffer.byteLength(part)}:${part}`).join('|');
    return createHmac('sha256', this.#key).update(input, 'utf8').digest('base64url');
  }

  /** Whether `presented` is the token for this form, session and request (constant time). */
  verify(presented: unknown, purpose: string, sessionHash: string, requestId: string): boolean {
    const expected = Buffer.from(this.issue(purpose, sessionHash, requestId), 'utf8');
    if (typeof presented !== 'string' || !TOKEN_FORM.test(presented)) {
      timingSafeEqual(expected, expected);
      return false;
    }
    return timingSafeEqual(Buffer.from(presented, 'utf8'), expected);
  }
}
