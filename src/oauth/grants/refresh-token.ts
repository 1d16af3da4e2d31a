import type { Db } from '../../db/database.js';
import { findRefreshToken, revokeFamily, rotateRefreshToken } from '../../repositories/refresh-token.repository.js';
import { OAuthError } from '../errors.js';
import { generateToken, hashSecret } from '../secrets.js';
import type { GrantHandler } from './grant.js';
import { audienceFor, narrowedScopes, userTokenResponse } from './user-tokens.js';

const INVALID = 'the refresh token is invalid, expired or revoked';

/**
 * RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): every use returns a new refresh token;
 * presenting an already-rotated one is reuse and revokes the whole chain, except within the configured
 * grace window, where it is refused without revoking (a client's concurrent retry).
 */
export function refreshTokenGrant(db: () => Db): GrantHandler {
  return {
    grantType: 'refresh_token',
    async handle(params, client, ctx) {
      const presented = typeof params.refresh_token === 'string' ? params.refresh_token : undefined;
      if (presented === undefined) throw new OAuthError('invalid_request', 'missing parameter: refresh_token');
      const tokenHash = hashSecret(presented);
      const next = generateToken();
      const rotated = await rotateRefreshToken(db(), tokenHash, client.client_id, hashSecret(next));
      if (!rotated) {
        const row = await findRefreshToken(db(), tokenHash);
        if (row && row.client_id === client.client_id && row.rotated_at && !row.revoked_at) {
          const graceMs = ctx.config.flow.refreshGrace * 1000;
          if (graceMs === 0 || Date.now() - row.rotated_at.getTime() > graceMs) {
            await revokeFamily(db(), row.family_id);
            throw new OAuthError('invalid_grant', 'the refresh token was already used; its chain is revoked');
          }
          throw new OAuthError('invalid_grant', 'the refresh token was just rotated; use the newest one');
        }
        throw new OAuthError('invalid_grant', INVALID);
      }
      const scopes = narrowedScopes(params, rotated.scopes);
      const audience = audienceFor(params, rotated.resources);
      return userTokenResponse(rotated, client, ctx, audience, scopes, next);
    },
  };
}
