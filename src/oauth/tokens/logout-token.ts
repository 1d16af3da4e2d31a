import { CompactSign } from 'jose';
import { generateJwtId } from '../secrets.js';
import type { Signer } from './access-token.js';

const encoder = new TextEncoder();

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the event that makes a JWT a logout token. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Back-Channel Logout §2.4 (and RFC 8725 §3.11): the explicit type of a logout token. */
export const LOGOUT_TOKEN_TYP = 'logout+jwt';

export interface LogoutTokenClaims {
  issuer: string;
  /** The client it is for: `aud`. */
  clientId: string;
  sub: string;
  /** The ended session's `sid`; null when a whole user is logged out. */
  sid: string | null;
  /** Seconds since the epoch: `iat`. */
  now: number;
  ttlSeconds: number;
}

/**
 * Signs a logout token (Back-Channel Logout 1.0 §2.4): `typ: logout+jwt`, iss, aud = the client, iat,
 * a short exp, a fresh jti, the backchannel-logout event, sub and sid; never `nonce` (§2.4 prohibits it so
 * a logout token cannot pass for an ID token).
 */
export async function issueLogoutToken(signer: Signer, claims: LogoutTokenClaims): Promise<string> {
  const payload: Record<string, unknown> = {
    iss: claims.issuer,
    sub: claims.sub,
    aud: claims.clientId,
    iat: claims.now,
    exp: claims.now + claims.ttlSeconds,
    jti: generateJwtId(),
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  };
  if (claims.sid !== null) payload.sid = claims.sid;
  return new CompactSign(encoder.encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: LOGOUT_TOKEN_TYP })
    .sign(signer.key);
}
