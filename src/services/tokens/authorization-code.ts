import type { Db } from '../../db/database.js';
import { challengeOf } from '../../oauth/checks/pkce.js';
import type { DpopProof } from '../../oauth/dpop.js';
import { isOpenIdRequest } from '../../oauth/checks/scope.js';
import { OAuthError } from '../../oauth/errors.js';
import type { GrantClient, TokenParams, TokenResponse } from '../../oauth/grants/grant.js';
import { hashSecret } from '../../oauth/secrets.js';
import { newRefreshChain } from '../../oauth/tokens/refresh-chain.js';
import { findAuthorizationCode } from '../../repositories/authorization-code.repository.js';
import { redeemCode, revokeFamily } from '../../repositories/refresh-token.repository.js';
import { type AuditSink, noAudit } from '../audit/audit-log.js';
import type { TokenContext } from './grant.js';
import {
  audienceFor,
  currentlyAllowedResource,
  currentlyAllowedScope,
  firstMissing,
  requestedResources,
  userTokenResponse,
} from '../../oauth/grants/user-tokens.js';

function str(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Why a redemption found nothing: a replay (revoke what the first redemption started), a resource not granted, or just invalid. */
async function explainFailure(
  db: Db,
  codeHash: string,
  clientId: string,
  resources: readonly string[],
  jkt: string | null,
  now: Date,
  audit: AuditSink,
): Promise<OAuthError> {
  const row = await findAuthorizationCode(db, codeHash);
  if (row && row.client_id === clientId && !row.consumed_at && row.expires_at > now) {
    const missing = firstMissing(resources, row.resources);
    if (missing !== undefined) return new OAuthError('invalid_target', 'a requested resource was not granted');
    // RFC 9449 §10: a code bound by dpop_jkt is redeemed only with a proof by that key; it stays usable.
    if (row.dpop_jkt !== null && row.dpop_jkt !== jkt)
      return new OAuthError(
        'invalid_grant',
        jkt === null
          ? 'the authorization code is bound to a DPoP key (dpop_jkt); send a DPoP proof by that key'
          : 'the DPoP proof key does not match the dpop_jkt of the authorization request',
      );
  }
  if (row && row.client_id === clientId && row.consumed_at) {
    // RFC 6749 §4.1.2 / RFC 9700 §4.5: a second redemption fails and revokes the tokens the first one got.
    if (row.family_id) await revokeFamily(db, row.family_id, now);
    audit.record({
      type: 'code.reuse_detected',
      actor: 'client',
      subject: row.sub,
      clientId,
      details: { chain: row.family_id, chain_revoked: row.family_id !== null },
    });
    return new OAuthError('invalid_grant', 'the authorization code has already been used');
  }
  // One description for unknown, expired, another client's, wrong verifier or wrong redirect_uri: no oracle.
  return new OAuthError('invalid_grant', 'the authorization code is invalid, expired, or does not match this request');
}

/** The grant_type this module serves. */
export const grantType = 'authorization_code';

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6): one atomic redemption, then an access token and (if allowed)
 * a refresh token. With a DPoP proof the access token is bound to its key, and so is a public client's
 * refresh-token chain (RFC 9449 §5); a confidential client's chain is not (its authentication binds it).
 */
export async function handle(
  params: TokenParams,
  client: GrantClient,
  ctx: TokenContext,
  proof?: DpopProof,
  audit: AuditSink = noAudit,
): Promise<TokenResponse> {
  const db = ctx.db();
  const now = ctx.clock();
  const code = str(params.code);
  if (code === undefined) throw new OAuthError('invalid_request', 'missing parameter: code');
  const challenge = challengeOf(str(params.code_verifier));
  const codeHash = hashSecret(code);
  const resources = requestedResources(params);
  // What the client may have now (an operator may have narrowed it since the user consented).
  const scopeAllowed = currentlyAllowedScope(client, ctx);
  const resourceAllowed = currentlyAllowedResource(client, ctx);
  const refusedResource = resources.find((resource) => !resourceAllowed(resource));
  if (refusedResource !== undefined)
    throw new OAuthError('invalid_target', `resource not allowed for this client: ${refusedResource}`);
  const wantsRefresh = client.grant_types.includes('refresh_token');
  // The chain's id is derived from its tokens' tag, so a pruned generation still names it (docs/refresh-tokens.md).
  const chain = wantsRefresh ? newRefreshChain() : null;
  const refreshToken = chain?.token ?? null;
  const redeemed = await redeemCode(
    db,
    {
      codeHash,
      clientId: client.client_id,
      codeChallenge: challenge,
      redirectUri: str(params.redirect_uri) ?? null,
      resources,
      jkt: proof?.jkt ?? null,
      now,
    },
    chain
      ? {
          familyId: chain.familyId,
          tokenHash: hashSecret(chain.token),
          expiresAt: new Date(now.getTime() + ctx.config.flow.refreshTokenTtl * 1000),
          // RFC 9449 §5: refresh tokens of public clients are bound to the proof key; others are not.
          jkt: proof && client.token_endpoint_auth_method === 'none' ? proof.jkt : null,
        }
      : null,
  );
  if (!redeemed) throw await explainFailure(db, codeHash, client.client_id, resources, proof?.jkt ?? null, now, audit);
  const audience = audienceFor(resources, redeemed.resources).filter(resourceAllowed);
  const granted = redeemed.scopes.filter(scopeAllowed);
  // A token with fewer scopes than granted always says so (RFC 6749 §5.1); with none left, there is no grant.
  // A grant for identity alone (openid, no resource) has no resource audience: its token is for /userinfo.
  const resourcesLost = audience.length === 0 && (redeemed.resources.length > 0 || !isOpenIdRequest(granted));
  if (resourcesLost || (redeemed.scopes.length > 0 && granted.length === 0)) {
    if (redeemed.family_id) await revokeFamily(db, redeemed.family_id, now);
    throw new OAuthError('invalid_grant', 'nothing the grant covers is allowed any more; authorize again');
  }
  return userTokenResponse(redeemed, client, ctx, audience, granted, refreshToken, proof?.jkt);
}
