import { epochSeconds } from '../../lib/clock.js';
import { resolveResources } from '../../oauth/checks/resource.js';
import { isOperatorClient } from '../../oauth/client.js';
import { resolveScopes } from '../../oauth/checks/scope.js';
import { OAuthError } from '../../oauth/errors.js';
import type { DpopProof } from '../../oauth/dpop.js';
import { type GrantClient, ISSUED_TO, type TokenParams, type TokenResponse } from '../../oauth/grants/grant.js';
import { issueAccessToken } from '../../oauth/tokens/access-token.js';
import type { TokenContext } from './grant.js';

/** The grant_type this module serves. */
export const grantType = 'client_credentials';

/** RFC 6749 §4.4: a confidential client acting for itself. Writes nothing to the database (a DPoP proof's jti aside). */
export async function handle(
  params: TokenParams,
  client: GrantClient,
  ctx: TokenContext,
  proof?: DpopProof,
): Promise<TokenResponse> {
  // OAuth 2.1 §4.2: only confidential clients may use this grant.
  if (client.token_endpoint_auth_method === 'none') {
    throw new OAuthError('unauthorized_client', 'public clients may not use client_credentials');
  }
  // Machine clients are an operator's to create; this also covers self-registered clients stored
  // before registration refused the grant.
  if (!isOperatorClient(client)) {
    throw new OAuthError('unauthorized_client', 'self-registered clients may not use client_credentials');
  }
  const scopes = resolveScopes(params.scope, client, ctx.scopePolicy);
  // OIDC Core §5.4: identity scopes describe a signed-in user; a client acting for itself has none.
  const identity = scopes.find((scope) => ctx.scopePolicy.identity.has(scope));
  if (identity !== undefined)
    throw new OAuthError('invalid_scope', `${identity} is an OpenID Connect scope, for a signed-in user only`);
  const audience = resolveResources(params.resource, client, ctx.resourcePolicy);
  const issued = await issueAccessToken(ctx.signer(), {
    issuer: ctx.config.issuer,
    subject: client.client_id,
    clientId: client.client_id,
    audience,
    scopes,
    ttlSeconds: ctx.config.tokens.accessTokenTtl,
    now: epochSeconds(ctx.clock),
    // RFC 9449 §5, §6.1: with a proof, the token is bound to its key.
    ...(proof ? { jkt: proof.jkt } : {}),
  });
  return {
    access_token: issued.token,
    token_type: proof ? 'DPoP' : 'Bearer',
    expires_in: issued.expiresIn,
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    [ISSUED_TO]: { sub: client.client_id, aud: audience },
  };
}
