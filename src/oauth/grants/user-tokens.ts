import { randomBytes } from 'node:crypto';
import { epochSeconds } from '../../lib/clock.js';
import { canonicalResource } from '../checks/resource.js';
import { allowedScopes, resolveScopes } from '../checks/scope.js';
import { issueAccessToken } from '../tokens/access-token.js';
import type { GrantClient, GrantContext, TokenParams, TokenResponse } from './grant.js';

/** What a user grant (code or refresh) holds: the user, and what they consented to. */
export interface UserGrant {
  sub: string;
  scopes: readonly string[];
  resources: readonly string[];
  auth_time: Date;
}

/** The resources a token request names (RFC 8707 §2.2), canonical; checked for syntax before anything is consumed. */
export function requestedResources(params: TokenParams): string[] {
  return [...new Set(params.resource.map(canonicalResource))];
}

/** The audience: the requested resources (already known to be granted), or every granted one when none is named. */
export function audienceFor(requested: readonly string[], granted: readonly string[]): string[] {
  return requested.length > 0 ? [...requested] : [...granted];
}

/** The scope a refresh asks for (syntax only; that it was granted is checked atomically with the rotation). */
export function requestedScopes(params: TokenParams): string[] | null {
  if (params.scope === undefined) return null;
  return resolveScopes(params.scope, { scopes: [], default_scopes: [] }, { catalogue: new Map(), enforce: false });
}

/** Which of the requested values the grant lacks, for a precise error once the atomic check refused. */
export function firstMissing(requested: readonly string[], granted: readonly string[]): string | undefined {
  return requested.find((v) => !granted.includes(v));
}

/** Whether a scope may still be issued to the client (ENFORCE_SCOPES: in the catalogue and its list). */
export function currentlyAllowedScope(client: GrantClient, ctx: GrantContext): (scope: string) => boolean {
  if (!ctx.scopePolicy.enforce) return () => true;
  const allowed = allowedScopes(client, ctx.scopePolicy);
  return (scope) => ctx.scopePolicy.catalogue.has(scope) && allowed.has(scope);
}

/** Whether a resource is still configured and allowed for the client (RFC 8707). */
export function currentlyAllowedResource(client: GrantClient, ctx: GrantContext): (resource: string) => boolean {
  const own = client.resources.length > 0 ? new Set(client.resources) : null;
  return (resource) => ctx.resourcePolicy.configured.includes(resource) && (own === null || own.has(resource));
}

/** Signs the access token for a user grant (bound to `jkt` when a DPoP proof came) and builds the RFC 6749 §5.1 response. */
export async function userTokenResponse(
  grant: UserGrant,
  client: GrantClient,
  ctx: GrantContext,
  audience: string[],
  scopes: string[],
  refreshToken: string | null,
  jkt?: string,
): Promise<TokenResponse> {
  const issued = await issueAccessToken(ctx.signer(), {
    issuer: ctx.config.issuer,
    subject: grant.sub,
    clientId: client.client_id,
    audience,
    scopes,
    ttlSeconds: ctx.config.tokens.accessTokenTtl,
    authTime: Math.floor(grant.auth_time.getTime() / 1000),
    now: epochSeconds(ctx.clock),
    ...(jkt === undefined ? {} : { jkt }),
  });
  return {
    access_token: issued.token,
    // RFC 9449 §5: a token bound to the proof key is of type DPoP.
    token_type: jkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: issued.expiresIn,
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

/** A new chain id. */
export function newFamilyId(): string {
  return randomBytes(16).toString('base64url');
}
