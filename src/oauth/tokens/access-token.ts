import { generateJwtId } from '../secrets.js';
import { type PrivateSigningKey, signCompact } from './jws.js';

/** What signs: the active key, imported once per process. */
export interface Signer {
  kid: string;
  alg: string;
  key: PrivateSigningKey;
}

export interface AccessTokenClaims {
  issuer: string;
  subject: string;
  clientId: string;
  audience: readonly string[];
  scopes: readonly string[];
  ttlSeconds: number;
  /** When the user signed in (RFC 9068 §2.2.1), for user grants only. */
  authTime?: number;
  /** Seconds since the epoch (`epochSeconds(clock)`): the token's iat, from the caller's clock. */
  now: number;
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`). */
  jkt?: string;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresIn: number;
  expiresAt: number;
}

/** Signs a JWT access token per RFC 9068: `typ: at+jwt`, `kid`, and iss/sub/aud/client_id/scope/jti/iat/exp (and RFC 9449 `cnf`). */
export async function issueAccessToken(signer: Signer, claims: AccessTokenClaims): Promise<IssuedAccessToken> {
  const iat = claims.now;
  const exp = iat + claims.ttlSeconds;
  const jti = generateJwtId();
  // The claims are built here and signed synchronously with node:crypto (jws.ts): jose's SignJWT would
  // clone and re-validate this payload, and its WebCrypto signing costs about twice node:crypto's for the
  // same key. Same JWS bytes; the tests verify them with jose.
  const payload: Record<string, unknown> = {
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.audience.length === 1 ? claims.audience[0]! : [...claims.audience],
    client_id: claims.clientId,
    iat,
    exp,
    jti,
  };
  if (claims.scopes.length > 0) payload.scope = claims.scopes.join(' ');
  if (claims.authTime !== undefined) payload.auth_time = claims.authTime;
  if (claims.jkt !== undefined) payload.cnf = { jkt: claims.jkt };
  const token = signCompact(signer.key, { alg: signer.alg, kid: signer.kid, typ: 'at+jwt' }, payload);
  return { token, jti, expiresIn: claims.ttlSeconds, expiresAt: exp };
}
