import { type JWTVerifyGetKey, createLocalJWKSet, errors, jwtVerify } from 'jose';
import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import { SIGNING_ALGS } from '../../keys/public-jwk.js';

/** The claims of a verified Gatehouse access token (RFC 9068 §2.2), as issueAccessToken writes them. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  client_id: string;
  scope?: string;
  jti: string;
  iat: number;
  exp: number;
  auth_time?: number;
  /** RFC 9449 §6.1: the DPoP key the token is bound to. */
  cnf?: { jkt: string };
}

/** What a Gatehouse access token must match besides its signature. */
export interface AccessTokenVerifierOptions {
  /** Gatehouse's own issuer: the only `iss` accepted. */
  issuer: string;
  /** Seconds of tolerance on `exp` (CLOCK_SKEW_SECONDS), for replicas whose clocks differ slightly. */
  clockSkew: number;
  /** The time `exp` is checked against; the system clock by default. */
  clock?: Clock;
}

/** Where the verifier reads Gatehouse's published keys: the current JWK Set, read on every call. */
export type PublishedKeys = () => JwkSet;

/** A verified access token's claims, or null for anything that is not a live access token of ours. */
export type AccessTokenVerifier = (token: string) => Promise<AccessTokenClaims | null>;

function isStringList(value: unknown): value is string | string[] {
  return (
    typeof value === 'string' || (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string'))
  );
}

/**
 * Verifies access tokens against Gatehouse's own published keys (next, active and retired, read from
 * `keys()` on every call, so a rotation or an immediate retirement applies as soon as this process sees
 * it). The local key set is rebuilt only when the store publishes a new JWKS object.
 */
export function accessTokenVerifier(keys: PublishedKeys, options: AccessTokenVerifierOptions): AccessTokenVerifier {
  let published: JwkSet | undefined;
  let local: JWTVerifyGetKey | undefined;
  return async (token) => {
    const jwks = keys();
    if (jwks !== published || !local) {
      local = createLocalJWKSet(jwks);
      published = jwks;
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, local, {
        issuer: options.issuer,
        // RFC 9068 §4 / RFC 8725 §3.11: a login_request or any other JWT signed with the same keys is not an access token.
        typ: 'at+jwt',
        // RFC 8725 §3.1: only the algorithms Gatehouse signs with; never `none`, never HS*.
        algorithms: [...SIGNING_ALGS],
        clockTolerance: options.clockSkew,
        ...(options.clock ? { currentDate: options.clock() } : {}),
        requiredClaims: ['sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
      }));
    } catch (err) {
      // Malformed, forged, foreign, expired, wrong issuer or type, unknown kid: all JOSE errors.
      if (err instanceof errors.JOSEError) return null;
      throw err;
    }
    const { iss, sub, aud, client_id: clientId, scope, jti, iat, exp, auth_time: authTime, cnf } = payload;
    // Our own signature makes these hold; the checks keep a malformed token of ours from becoming a 500.
    if (typeof iss !== 'string' || typeof sub !== 'string' || !isStringList(aud) || typeof clientId !== 'string')
      return null;
    if (typeof jti !== 'string' || typeof iat !== 'number' || typeof exp !== 'number') return null;
    if (scope !== undefined && typeof scope !== 'string') return null;
    if (authTime !== undefined && typeof authTime !== 'number') return null;
    const jkt = (cnf as { jkt?: unknown } | undefined)?.jkt;
    if (cnf !== undefined && typeof jkt !== 'string') return null;
    return {
      iss,
      sub,
      aud,
      client_id: clientId,
      ...(scope !== undefined ? { scope } : {}),
      jti,
      iat,
      exp,
      ...(authTime !== undefined ? { auth_time: authTime } : {}),
      ...(typeof jkt === 'string' ? { cnf: { jkt } } : {}),
    };
  };
}
