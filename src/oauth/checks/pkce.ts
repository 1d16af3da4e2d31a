import { hash } from 'node:crypto';
import { OAuthError } from '../errors.js';

// RFC 7636 §4.1: code_verifier = 43*128 unreserved characters; §4.2: an S256 challenge is its base64url SHA-256 (43 characters).
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** Checks the PKCE parameters of an authorization request: S256 only (OAuth 2.1 §4.1.1; plain and absent are refused). */
export function checkCodeChallenge(challenge: string | undefined, method: string | undefined): string {
  if (challenge === undefined)
    throw new OAuthError('invalid_request', 'code_challenge is required (PKCE, OAuth 2.1 §4.1.1)', {
      redirectable: true,
    });
  if (method !== 'S256') {
    throw new OAuthError('invalid_request', 'code_challenge_method must be S256 (plain is not supported)', {
      redirectable: true,
    });
  }
  if (!S256_CHALLENGE.test(challenge))
    throw new OAuthError('invalid_request', 'code_challenge must be 43 base64url characters (RFC 7636 §4.2)', {
      redirectable: true,
    });
  return challenge;
}

/** The S256 challenge of a verifier (RFC 7636 §4.6), or invalid_grant when the verifier is malformed. */
export function challengeOf(verifier: string | undefined): string {
  if (verifier === undefined) throw new OAuthError('invalid_grant', 'code_verifier is required (PKCE)');
  if (!VERIFIER.test(verifier))
    throw new OAuthError('invalid_grant', 'code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)');
  // The verifier is unreserved ASCII (checked above), so its UTF-8 bytes are its ASCII bytes.
  return hash('sha256', verifier, 'base64url');
}
