import type { RefreshTokenRow } from '../db/tables/refresh-token.table.js';
import { type Client, isOperatorClient } from './client.js';
import { isOpaqueToken } from './secrets.js';
import type { AccessTokenClaims, AccessTokenVerifier } from './tokens/access-token-verifier.js';

/** RFC 7662 §2.2: an inactive token is described by `active: false` and nothing else. */
export interface InactiveToken {
  active: false;
}

/** RFC 7662 §2.2 members of an active token (plus RFC 9068's auth_time when a user signed in). */
export interface ActiveToken {
  active: true;
  scope?: string;
  client_id: string;
  token_type?: 'Bearer' | 'DPoP';
  exp: number;
  iat: number;
  sub: string;
  aud?: string | string[];
  iss: string;
  jti?: string;
  auth_time?: number;
  /** RFC 9449 §6.2: the DPoP key a bound access token is bound to. */
  cnf?: { jkt: string };
}

/** An RFC 7662 §2.2 introspection response. */
export type IntrospectionResponse = InactiveToken | ActiveToken;

/** What introspection reads: the access-token verifier and the caller's own live refresh tokens. */
export interface IntrospectionSources {
  issuer: string;
  verifyAccessToken: AccessTokenVerifier;
  /** A live refresh token of this client, looked up by its value (stored only as a hash), or undefined. */
  findLiveRefreshToken: (token: string, clientId: string) => Promise<RefreshTokenRow | undefined>;
  /** Whether the client a token was issued to still exists and is enabled. */
  clientActive: (clientId: string) => Promise<boolean>;
  /** Whether the user's grants to the client were revoked at or after the token was issued (admin API, gatehouse users revoke). */
  grantRevokedSince: (sub: string, clientId: string, issuedAt: Date) => Promise<boolean>;
}

/** The caller: an authenticated confidential client. */
export type IntrospectingClient = Pick<Client, 'client_id' | 'resources' | 'source'>;

const INACTIVE: InactiveToken = Object.freeze({ active: false });

/**
 * RFC 7662 §4 and §5 (who may learn what): the client the token was issued to, or a resource server
 * (a confidential client an operator registered whose own `resources` list names one of the token's
 * audiences). An empty
 * `resources` list means "may request every resource" for a client's own tokens; it never makes a
 * client a resource server for anyone else's.
 */
function mayIntrospectAccessToken(caller: IntrospectingClient, claims: AccessTokenClaims): boolean {
  if (claims.client_id === caller.client_id) return true;
  // Only a client an operator registered (admin API, CLI, CLIENTS_FILE) speaks for a resource: a client
  // that registered itself chose its own `resources`, which proves nothing about serving them.
  if (!isOperatorClient(caller)) return false;
  const audience = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  return audience.some((aud) => caller.resources.includes(aud));
}

function accessTokenInfo(claims: AccessTokenClaims): ActiveToken {
  return {
    active: true,
    ...(claims.scope !== undefined ? { scope: claims.scope } : {}),
    client_id: claims.client_id,
    // RFC 7662 §2.2: token_type is an RFC 6749 §5.1 / §7.1 access token type; RFC 9449 §6.2: DPoP when bound.
    token_type: claims.cnf ? 'DPoP' : 'Bearer',
    exp: claims.exp,
    iat: claims.iat,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    jti: claims.jti,
    ...(claims.auth_time !== undefined ? { auth_time: claims.auth_time } : {}),
    // RFC 9449 §6.2: a resource server checks the proof's key against this.
    ...(claims.cnf ? { cnf: { jkt: claims.cnf.jkt } } : {}),
  };
}

/**
 * A refresh token is presented only to Gatehouse: no `aud` (its granted resources are not its audience)
 * and no `token_type` (RFC 7662 §2.2 names access token types, and "refresh_token" is not one).
 */
function refreshTokenInfo(row: RefreshTokenRow, issuer: string): ActiveToken {
  return {
    active: true,
    ...(row.scopes.length > 0 ? { scope: row.scopes.join(' ') } : {}),
    client_id: row.client_id,
    // The chain's absolute expiry: every generation inherits it.
    exp: Math.floor(row.expires_at.getTime() / 1000),
    iat: Math.floor(row.created_at.getTime() / 1000),
    sub: row.sub,
    iss: issuer,
  };
}

/**
 * RFC 7662 §2: what Gatehouse tells an authenticated client about a token. The two kinds cannot be
 * confused (a JWT has dots, an opaque token never does), so the token is tried as the kind its form
 * says, whatever token_type_hint claims (§2.1: only a hint). Access tokens are self-contained JWTs:
 * one stays active until it expires even after its refresh token's chain is revoked (the token does not
 * name its chain), as an offline check would accept it, unless its client has since been disabled or
 * deleted or its user's grants revoked through the admin API. A refresh token is active until it is rotated,
 * revoked or past its chain's expiry, and only to the client it was issued to.
 */
export async function introspect(
  token: string,
  caller: IntrospectingClient,
  sources: IntrospectionSources,
): Promise<IntrospectionResponse> {
  if (isOpaqueToken(token)) {
    const row = await sources.findLiveRefreshToken(token, caller.client_id);
    return row ? refreshTokenInfo(row, sources.issuer) : INACTIVE;
  }
  const claims = await sources.verifyAccessToken(token);
  if (!claims || !mayIntrospectAccessToken(caller, claims)) return INACTIVE;
  // What only an online check can know: the token's client was disabled or deleted since, or (a token
  // for a user) the user's grants were revoked since. Offline verification still accepts such a token
  // until it expires; that is the reason to introspect.
  if (!(await sources.clientActive(claims.client_id))) return INACTIVE;
  if (
    claims.auth_time !== undefined &&
    (await sources.grantRevokedSince(claims.sub, claims.client_id, new Date(claims.iat * 1000)))
  )
    return INACTIVE;
  return accessTokenInfo(claims);
}
