import { OAuthError } from '../errors.js';
import { resolveResources } from '../checks/resource.js';
import { resolveScopes } from '../checks/scope.js';
import { issueAccessToken } from '../tokens/access-token.js';
import type { GrantHandler } from './grant.js';

/** RFC 6749 §4.4: a confidential client acting for itself. Writes nothing to the database. */
export const clientCredentials: GrantHandler = {
  grantType: 'client_credentials',
  async handle(params, client, ctx) {
    // OAuth 2.1 §4.2: only confidential clients may use this grant.
    if (client.token_endpoint_auth_method === 'none') {
      throw new OAuthError('unauthorized_client', 'public clients may not use client_credentials');
    }
    // Machine clients are an operator's to create; this also covers self-registered clients stored
    // before registration refused the grant.
    if (client.source !== 'admin' && client.source !== 'file') {
      throw new OAuthError('unauthorized_client', 'self-registered clients may not use client_credentials');
    }
    const scopes = resolveScopes(params.scope, client, ctx.scopePolicy);
    const audience = resolveResources(params.resource, client, ctx.resourcePolicy);
    const issued = await issueAccessToken(ctx.signer(), {
      issuer: ctx.config.issuer,
      subject: client.client_id,
      clientId: client.client_id,
      audience,
      scopes,
      ttlSeconds: ctx.config.tokens.accessTokenTtl,
    });
    return {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    };
  },
};
