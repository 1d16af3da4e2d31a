import type { Db } from '../../db/database.js';
import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import type { ScopePolicy } from '../../oauth/checks/scope.js';
import { consentedClaims } from '../../oauth/claims.js';
import type { Client } from '../../oauth/client.js';
import { accessTokenVerifier } from '../../oauth/tokens/access-token-verifier.js';
import { userinfoEndpoint } from '../../oauth/tokens/id-token.js';
import { findGrantedClaims } from '../../repositories/granted-claims.repository.js';
import { grantRevokedSince } from '../../repositories/user-grant.repository.js';

/** What /userinfo reads: Gatehouse's published keys, its clients, the kept claims and the time. */
export interface UserinfoDeps {
  issuer: string;
  clockSkew: number;
  jwks: () => JwkSet;
  clients: { get(clientId: string): Promise<Pick<Client, 'disabled_at'> | undefined> };
  identity: ScopePolicy['identity'];
  db: () => Db;
  clock: Clock;
}

/** RFC 6750 §3.1 refusals of a bearer token at /userinfo. */
export interface UserinfoRefusal {
  kind: 'refused';
  error: 'invalid_token' | 'insufficient_scope';
  description: string;
}

/** The OIDC Core §5.3.2 answer: `sub` and the consented claims. */
export interface UserinfoClaims {
  kind: 'claims';
  claims: Record<string, unknown>;
}

/**
 * Answers /userinfo for an access token: a bearer token, or with `jkt` the thumbprint of the key of a
 * DPoP proof already checked for this request (RFC 9449 §7.1).
 */
export type Userinfo = (accessToken: string, jkt?: string) => Promise<UserinfoClaims | UserinfoRefusal>;

const refused = (error: UserinfoRefusal['error'], description: string): UserinfoRefusal => ({
  kind: 'refused',
  error,
  description,
});

/**
 * OIDC Core §5.3: the claims about the user an access token's identity scopes release. The token must
 * be a live Gatehouse access token for a user, granted `openid` and meant for this endpoint (its `aud`
 * names it), whose client is still enabled and whose grants were not revoked since it was issued (the
 * checks /introspect makes). The claims are those kept with the grant at the user's last sign-in for this
 * client, filtered by the token's scopes: a narrowed refresh releases less.
 */
export function userinfoService(deps: UserinfoDeps): Userinfo {
  const verify = accessTokenVerifier(deps.jwks, { issuer: deps.issuer, clockSkew: deps.clockSkew, clock: deps.clock });
  const endpoint = userinfoEndpoint(deps.issuer);
  return async (accessToken, jkt) => {
    const claims = await verify(accessToken);
    if (!claims) return refused('invalid_token', 'the access token is invalid or expired');
    const bound = (claims as { cnf?: { jkt?: unknown } }).cnf?.jkt;
    // RFC 9449 §7.2: a DPoP-bound token is no bearer token, so a leaked one is worthless without its key.
    if (jkt === undefined && bound !== undefined)
      return refused('invalid_token', 'the access token is bound to a DPoP key; present it with the DPoP scheme');
    // §7.1: under the DPoP scheme, the token must be bound to the key that signed the proof.
    if (jkt !== undefined && bound !== jkt)
      return refused('invalid_token', 'the access token is not bound to the key of the DPoP proof');
    const scopes = claims.scope?.split(' ') ?? [];
    // RFC 6750 §3.1: a valid token without the scope this resource needs.
    if (!scopes.includes('openid')) return refused('insufficient_scope', 'the access token was not granted openid');
    const audience = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
    if (!audience.includes(endpoint) || claims.auth_time === undefined)
      return refused('invalid_token', 'the access token is not meant for the UserInfo endpoint');
    const client = await deps.clients.get(claims.client_id);
    if (!client || client.disabled_at !== null) return refused('invalid_token', 'the client is unknown or disabled');
    if (await grantRevokedSince(deps.db(), claims.sub, claims.client_id, new Date(claims.iat * 1000)))
      return refused('invalid_token', 'the grant behind this access token was revoked');
    const stored = (await findGrantedClaims(deps.db(), claims.sub, claims.client_id)) ?? {};
    // OIDC Core §5.3.2: sub is always returned, and matches the ID token's.
    return { kind: 'claims', claims: { sub: claims.sub, ...consentedClaims(stored, scopes, deps.identity) } };
  };
}
