import { epochSeconds } from '../../lib/clock.js';
import { canonicalResource } from '../checks/resource.js';
import { allowedScopes, isOpenIdRequest, resolveScopes } from '../checks/scope.js';
import { OAuthError } from '../errors.js';
import { issueIdToken, userinfoEndpoint } from '../tokens/id-token.js';
import { issueAccessToken } from '../tokens/access-token.js';
import { type GrantClient, type GrantContext, ISSUED_TO, type TokenParams, type TokenResponse } from './grant.js';

/** What a user grant (code or refresh) holds: the user, and what they consented to. */
export interface UserGrant {
  sub: string;
  scopes: readonly string[];
  resources: readonly string[];
  auth_time: Date;
  /** OIDC: the code's nonce (absent on refresh, OIDC Core §12.2), the sign-in's acr and amr, the session's sid. */
  nonce?: string | null;
  acr?: string | null;
  amr?: readonly string[];
  sid?: string | null;
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
  return resolveScopes(
    params.scope,
    { scopes: [], default_scopes: [] },
    { catalogue: new Map(), enforce: false, identity: new Map() },
  );
}

/** Which of the requested values the grant lacks, for a precise error once the atomic check refused. */
export function firstMissing(requested: readonly string[], granted: readonly string[]): string | undefined {
  return requested.find((v) => !granted.includes(v));
}

/** Whether a scope may still be issued to the client (ENFORCE_SCOPES: in the catalogue and its list). */
export function currentlyAllowedScope(client: GrantClient, ctx: GrantContext): (scope: string) => boolean {
  if (!ctx.scopePolicy.enforce) return () => true;
  const allowed = allowedScopes(client, ctx.scopePolicy);
  const { catalogue, identity } = ctx.scopePolicy;
  return (scope) => identity.has(scope) || (catalogue.has(scope) && allowed.has(scope));
}

/** Whether a resource is still configured and allowed for the client (RFC 8707). */
export function currentlyAllowedResource(client: GrantClient, ctx: GrantContext): (resource: string) => boolean {
  const own = client.resources.length > 0 ? new Set(client.resources) : null;
  return (resource) => ctx.resourcePolicy.configured.includes(resource) && (own === null || own.has(resource));
}

/**
 * The access token's audience: the granted resources, plus the UserInfo endpoint when `openid` was
 * granted (OIDC Core §5.3: the access token from an OpenID request is presented there). A request for
 * identity alone has no resource, and its token is for /userinfo only.
 */
export function tokenAudience(issuer: string, resources: readonly string[], scopes: readonly string[]): string[] {
  return isOpenIdRequest(scopes) ? [...resources, userinfoEndpoint(issuer)] : [...resources];
}

/**
 * Signs the access token for a user grant (bound to `jkt` when a DPoP proof came) and builds the RFC 6749 §5.1 response; with `openid` granted
 * also an ID token (OIDC Core §3.1.3.3, and §12.2 on refresh), signed by the same active key.
 */
export async function userTokenResponse(
  grant: UserGrant,
  client: GrantClient,
  ctx: GrantContext,
  audience: string[],
  scopes: string[],
  refreshToken: string | null,
  jkt?: string,
): Promise<TokenResponse> {
  const signer = ctx.signer();
  const openid = isOpenIdRequest(scopes);
  // OIDC Registration 1.0 §2: a client that registered an alg gets only that one; Gatehouse signs with
  // its active key alone, so a mismatch (SIGNING_ALG changed since) is refused rather than ignored.
  const wanted = client.id_token_signed_response_alg;
  if (openid && wanted && wanted !== signer.alg) {
    throw new OAuthError(
      'invalid_client',
      `the client's id_token_signed_response_alg ${wanted} is not the algorithm this server signs with (${signer.alg})`,
    );
  }
  const now = epochSeconds(ctx.clock);
  const authTime = Math.floor(grant.auth_time.getTime() / 1000);
  const tokenAud = tokenAudience(ctx.config.issuer, audience, scopes);
  const issued = await issueAccessToken(signer, {
    issuer: ctx.config.issuer,
    subject: grant.sub,
    clientId: client.client_id,
    audience: tokenAud,
    scopes,
    ttlSeconds: ctx.config.tokens.accessTokenTtl,
    authTime,
    now,
    ...(jkt === undefined ? {} : { jkt }),
  });
  const idToken = openid
    ? await issueIdToken(signer, {
        issuer: ctx.config.issuer,
        subject: grant.sub,
        clientId: client.client_id,
        ttlSeconds: ctx.config.tokens.accessTokenTtl,
        now,
        authTime,
        nonce: grant.nonce ?? null,
        acr: grant.acr ?? null,
        amr: grant.amr ?? [],
        sid: grant.sid ?? null,
        accessToken: issued.token,
      })
    : undefined;
  return {
    access_token: issued.token,
    // RFC 9449 §5: a token bound to the proof key is of type DPoP.
    token_type: jkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: issued.expiresIn,
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
    ...(idToken ? { id_token: idToken } : {}),
    [ISSUED_TO]: { sub: grant.sub, aud: tokenAud },
  };
}
