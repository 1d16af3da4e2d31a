import type { Db } from '../../db/database.js';
import { OAuthError } from '../../oauth/errors.js';
import type { GrantClient, TokenParams, TokenResponse } from '../../oauth/grants/grant.js';
import { generateToken, hashSecret } from '../../oauth/secrets.js';
import { findRefreshToken, revokeFamily, rotateRefreshToken } from '../../repositories/refresh-token.repository.js';
import type { TokenContext } from './grant.js';
import {
  audienceFor,
  currentlyAllowedResource,
  currentlyAllowedScope,
  firstMissing,
  requestedResources,
  requestedScopes,
  userTokenResponse,
} from '../../oauth/grants/user-tokens.js';

const INVALID = 'the refresh token is invalid, expired or revoked';

/** Why a rotation found nothing: reuse (revoke the chain, unless within the grace window), a scope or resource beyond the grant, or just invalid. */
async function explainFailure(
  db: Db,
  tokenHash: string,
  clientId: string,
  scopes: readonly string[],
  resources: readonly string[],
  graceSeconds: number,
  now: Date,
): Promise<OAuthError> {
  const row = await findRefreshToken(db, tokenHash);
  if (!row || row.client_id !== clientId) return new OAuthError('invalid_grant', INVALID);
  if (row.revoked_at) {
    // A revocation may have raced a rotation: make sure no later generation of the chain stays live.
    await revokeFamily(db, row.family_id, now);
    return new OAuthError('invalid_grant', INVALID);
  }
  if (row.rotated_at) {
    if (graceSeconds === 0 || now.getTime() - row.rotated_at.getTime() > graceSeconds * 1000) {
      await revokeFamily(db, row.family_id, now);
      return new OAuthError('invalid_grant', 'the refresh token was already used; its chain is revoked');
    }
    return new OAuthError('invalid_grant', 'the refresh token was just rotated; use the newest one');
  }
  if (row.expires_at <= now) return new OAuthError('invalid_grant', INVALID);
  // RFC 6749 §6: a refresh may narrow the scope, never widen it; RFC 8707 §2.2: only granted resources.
  if (firstMissing(scopes, row.scopes) !== undefined)
    return new OAuthError('invalid_scope', 'the requested scope exceeds the grant');
  if (firstMissing(resources, row.resources) !== undefined)
    return new OAuthError('invalid_target', 'a requested resource was not granted');
  // Live, in scope, yet not rotated: its chain has a revoked member (a revocation raced a rotation).
  await revokeFamily(db, row.family_id, now);
  return new OAuthError('invalid_grant', INVALID);
}

/** The grant_type this module serves. */
export const grantType = 'refresh_token';

/**
 * RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): every use returns a new refresh token;
 * presenting an already-rotated one is reuse and revokes the whole chain, except within the configured
 * grace window, where it is refused without revoking (a client's concurrent retry).
 */
export async function handle(params: TokenParams, client: GrantClient, ctx: TokenContext): Promise<TokenResponse> {
  const db = ctx.db();
  const now = ctx.clock();
  const presented = typeof params.refresh_token === 'string' ? params.refresh_token : undefined;
  if (presented === undefined) throw new OAuthError('invalid_request', 'missing parameter: refresh_token');
  // Syntax first: nothing is consumed by a malformed request.
  const scopes = requestedScopes(params);
  const resources = requestedResources(params);
  // What the client and server allow now, not only what was granted then: an operator may have
  // narrowed the client's scopes or resources, or dropped a resource, since the user consented.
  const scopeAllowed = currentlyAllowedScope(client, ctx);
  const resourceAllowed = currentlyAllowedResource(client, ctx);
  const refusedScope = scopes?.find((scope) => !scopeAllowed(scope));
  if (refusedScope !== undefined)
    throw new OAuthError('invalid_scope', `scope not allowed for this client: ${refusedScope}`);
  const refusedResource = resources.find((resource) => !resourceAllowed(resource));
  if (refusedResource !== undefined)
    throw new OAuthError('invalid_target', `resource not allowed for this client: ${refusedResource}`);

  const tokenHash = hashSecret(presented);
  const next = generateToken();
  const rotated = await rotateRefreshToken(db, {
    tokenHash,
    clientId: client.client_id,
    newHash: hashSecret(next),
    scopes: scopes ?? [],
    resources,
    now,
  });
  if (!rotated)
    throw await explainFailure(
      db,
      tokenHash,
      client.client_id,
      scopes ?? [],
      resources,
      ctx.config.flow.refreshGrace,
      now,
    );
  const wanted = scopes ?? rotated.scopes;
  const granted = wanted.filter(scopeAllowed);
  const audience = audienceFor(resources, rotated.resources).filter(resourceAllowed);
  // A token with fewer scopes than asked always says so (RFC 6749 §5.1); with none left, there is no grant.
  if (audience.length === 0 || (wanted.length > 0 && granted.length === 0)) {
    // Nothing the grant covers is served any more: the grant is dead, so is its chain.
    await revokeFamily(db, rotated.family_id, now);
    throw new OAuthError('invalid_grant', 'nothing the grant covers is allowed any more; authorize again');
  }
  return userTokenResponse(rotated, client, ctx, audience, granted, next);
}
