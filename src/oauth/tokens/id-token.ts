import { hash } from 'node:crypto';
import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import { OAuthError } from '../errors.js';
import type { Signer } from './access-token.js';
import { signCompact } from './jws.js';
import { verifyIdTokenHint } from './id-token-hint.js';

/**
 * The UserInfo endpoint's URL (OIDC Core §5.3): the `aud` an access token gets when `openid` was
 * granted, beside any resource it names, so /userinfo accepts only tokens meant for it.
 */
export function userinfoEndpoint(issuer: string): string {
  return `${issuer}/userinfo`;
}

/** The longest nonce accepted (OIDC Core §3.1.2.1 sets none; it is stored and echoed, so it is bounded). */
export const MAX_NONCE_LENGTH = 255;

/** What an ID token says (OIDC Core §2), as the grant knows it. */
export interface IdTokenClaims {
  issuer: string;
  subject: string;
  /** The client: `aud` and `azp` (OIDC Core §2: azp is the party the token was issued to). */
  clientId: string;
  ttlSeconds: number;
  /** Seconds since the epoch: iat. */
  now: number;
  /** When the user signed in (seconds); always sent (OIDC Core §2 makes it required with max_age or require_auth_time). */
  authTime: number;
  /** Only on the code exchange: the request's nonce, exactly (§3.1.3.7 step 11); never on refresh (§12.2). */
  nonce?: string | null;
  acr?: string | null;
  amr?: readonly string[];
  /** The Gatehouse session's public id (OpenID Connect Back-Channel Logout 1.0 §2.1). */
  sid?: string | null;
  /** The access token issued beside it: its at_hash (OIDC Core §3.1.3.6). */
  accessToken?: string;
}

/** The hash OIDC Core §3.1.3.6 names for at_hash: the one of the JWS alg (SHA-512 for Ed25519, per the EdDSA registration). */
function hashFor(alg: string): string {
  if (alg.endsWith('384')) return 'sha384';
  if (alg.endsWith('512') || alg === 'EdDSA') return 'sha512';
  return 'sha256';
}

/** OIDC Core §3.1.3.6: base64url of the left half of the access token's hash, under the ID token's alg. */
export function atHash(accessToken: string, alg: string): string {
  // Our own access token: a compact JWS, ASCII, so its UTF-8 bytes are its ASCII bytes.
  const digest = hash(hashFor(alg), accessToken, 'buffer');
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** Signs an ID token (OIDC Core §2, §3.1.3.6) with the active key; no `typ` (§2 names none, and `JWT` adds nothing). */
export async function issueIdToken(signer: Signer, claims: IdTokenClaims): Promise<string> {
  const payload: Record<string, unknown> = {
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.clientId,
    exp: claims.now + claims.ttlSeconds,
    iat: claims.now,
    auth_time: claims.authTime,
  };
  if (claims.nonce) payload.nonce = claims.nonce;
  if (claims.acr) payload.acr = claims.acr;
  if (claims.amr && claims.amr.length > 0) payload.amr = [...claims.amr];
  payload.azp = claims.clientId;
  if (claims.sid) payload.sid = claims.sid;
  if (claims.accessToken !== undefined) payload.at_hash = atHash(claims.accessToken, signer.alg);
  return signCompact(signer.key, { alg: signer.alg, kid: signer.kid }, payload);
}

/** Verifies an id_token_hint for /authorize and returns its `sub`; throws invalid_request naming why not. */
export type IdTokenHintVerifier = (token: string, clientId: string) => Promise<string>;

/**
 * OIDC Core §3.1.2.1 id_token_hint at /authorize: the one id_token_hint rule (id-token-hint.ts: an ID token
 * Gatehouse signed, `iss` ours, not another of its JWT types, expiry not checked, issued within the
 * longest session), and issued to this very client.
 */
export function idTokenHintVerifier(
  keys: () => JwkSet,
  options: { issuer: string; clockSkew: number; maxAge: number; clock: Clock },
): IdTokenHintVerifier {
  return async (token, clientId) => {
    const hint = await verifyIdTokenHint(token, keys(), {
      issuer: options.issuer,
      now: options.clock(),
      clockSkew: options.clockSkew,
      maxAge: options.maxAge,
    });
    if (hint.clientId !== clientId)
      throw new OAuthError('invalid_request', 'id_token_hint was not issued to this client');
    return hint.sub;
  };
}
