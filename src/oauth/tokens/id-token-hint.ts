import { createLocalJWKSet, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import type { JwkSet } from '../../keys/signing-key.js';
import { SIGNING_ALGS } from '../../keys/public-jwk.js';
import { OAuthError } from '../errors.js';

/** What a verified id_token_hint says: who, for which client, in which session. */
export interface IdTokenHint {
  sub: string;
  /** The client the ID token was issued to: `azp`, else its single `aud`. */
  clientId: string;
  sid: string | null;
}

export interface IdTokenHintOptions {
  issuer: string;
  now: Date;
  /** CLOCK_SKEW_SECONDS. */
  clockSkew: number;
  /**
   * The oldest `iat` accepted, in seconds before now: an expired hint is fine (RP-Initiated Logout §2
   * asks the OP to accept one from a recent session), one older than any session could be is not recent.
   */
  maxAge: number;
}

function refused(description: string, cause?: unknown): never {
  throw new OAuthError('invalid_request', description, cause === undefined ? {} : { cause });
}

/** RFC 8725 §3.11: other JWTs Gatehouse signs with the same key (`at+jwt`, `logout+jwt`, `login-request+jwt`) are not ID tokens. */
function typOk(hint: string): boolean {
  let typ: unknown;
  try {
    typ = decodeProtectedHeader(hint).typ;
  } catch {
    refused('id_token_hint is not a valid signed JWT');
  }
  return typ === undefined || (typeof typ === 'string' && /^(application\/)?jwt$/i.test(typ));
}

function clientOf(payload: JWTPayload): string | null {
  if (typeof payload.azp === 'string' && payload.azp !== '') return payload.azp;
  if (typeof payload.aud === 'string' && payload.aud !== '') return payload.aud;
  if (Array.isArray(payload.aud) && payload.aud.length === 1 && typeof payload.aud[0] === 'string')
    return payload.aud[0];
  return null;
}

/**
 * Verifies an id_token_hint (OpenID Connect RP-Initiated Logout 1.0 §2: "the OP MUST validate that it
 * was the issuer of the ID Token"): signed by one of Gatehouse's published keys with an allowed
 * algorithm, `iss` this issuer, not another of Gatehouse's JWT types, with `sub`, a client (`azp` or one
 * `aud`) and an `iat` at most `maxAge` old. An expired one is accepted (§2: the OP SHOULD accept ID
 * tokens past `exp` from a current or recent session). Throws invalid_request (an error page).
 */
export async function verifyIdTokenHint(hint: string, jwks: JwkSet, options: IdTokenHintOptions): Promise<IdTokenHint> {
  if (!typOk(hint)) refused('id_token_hint is not an ID token');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(hint, createLocalJWKSet(jwks), {
      issuer: options.issuer,
      algorithms: [...SIGNING_ALGS],
      currentDate: options.now,
      clockTolerance: options.clockSkew,
    }));
  } catch (err) {
    // jose checks the signature, then iss, then exp: an expired token has passed the first two.
    if (err instanceof errors.JWTExpired && err.claim === 'exp') payload = err.payload;
    else if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'iss')
      refused('id_token_hint was not issued by this server', err);
    else refused('id_token_hint is not an ID token this server signed', err);
  }
  const nowSeconds = Math.floor(options.now.getTime() / 1000);
  if (typeof payload.sub !== 'string' || payload.sub === '') refused('id_token_hint has no sub');
  const clientId = clientOf(payload);
  if (!clientId) refused('id_token_hint names no client (aud or azp)');
  if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) refused('id_token_hint has no numeric iat');
  if (payload.iat > nowSeconds + options.clockSkew) refused('id_token_hint was issued in the future');
  if (nowSeconds - payload.iat > options.maxAge) refused('id_token_hint is older than any session could be');
  const sid = typeof payload.sid === 'string' && payload.sid !== '' ? payload.sid : null;
  return { sub: payload.sub, clientId, sid };
}
