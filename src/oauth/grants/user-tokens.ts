import { randomBytes } from 'node:crypto';
import { OAuthError } from '../errors.js';
import { canonicalResource } from '../checks/resource.js';
import { resolveScopes } from '../checks/scope.js';
import { issueAccessToken } from '../tokens/access-token.js';
import type { GrantClient, GrantContext, TokenParams, TokenResponse } from './grant.js';

/** What a user grant (code or refresh) holds: the user, and what they consented to. */
export interface UserGrant {
  sub: string;
  scopes: readonly string[];
  resources: readonly string[];
  auth_time: Date;
}

/** RFC 8707 §2.2: `resource` at the token endpoint picks among the granted resources; none means all of them. */
export function audienceFor(params: TokenParams, granted: readonly string[]): string[] {
  if (params.resource.length === 0) return [...granted];
  const wanted = [...new Set(params.resource.map(canonicalResource))];
  for (const r of wanted) if (!granted.includes(r)) throw new OAuthError('invalid_target', `resource was not granted: ${r}`);
  return wanted;
}

/** RFC 6749 §6: a refresh may narrow the scope, never widen it. */
export function narrowedScopes(params: TokenParams, granted: readonly string[]): string[] {
  if (params.scope === undefined) return [...granted];
  const requested = resolveScopes(params.scope, { scopes: granted, default_scopes: granted }, { catalogue: new Map(), enforce: false });
  const extra = requested.find((s) => !granted.includes(s));
  if (extra !== undefined) throw new OAuthError('invalid_scope', `scope was not granted: ${extra}`);
  return requested;
}

/** Signs the access token for a user grant and builds the RFC 6749 §5.1 response. */
export async function userTokenResponse(grant: UserGrant, client: GrantClient, ctx: GrantContext, audience: string[], scopes: string[], refreshToken: string | null): Promise<TokenResponse> {
  const issued = await issueAccessToken(ctx.signer(), {
    issuer: ctx.config.issuer,
    subject: grant.sub,
    clientId: client.client_id,
    audience,
    scopes,
    ttlSeconds: ctx.config.tokens.accessTokenTtl,
    authTime: Math.floor(grant.auth_time.getTime() / 1000),
  });
  return {
    access_token: issued.token,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

/** A new chain id. */
export function newFamilyId(): string {
  return randomBytes(16).toString('base64url');
}
