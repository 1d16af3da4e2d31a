import type { Db } from '../../db/database.js';
import type { DpopProof } from '../../oauth/dpop.js';
import { isOpenIdRequest } from '../../oauth/checks/scope.js';
import { OAuthError } from '../../oauth/errors.js';
import type { GrantClient, TokenParams, TokenResponse } from '../../oauth/grants/grant.js';
import { hashSecret } from '../../oauth/secrets.js';
import type { RefreshTokenRow } from '../../db/tables/refresh-token.table.js';
import { chainIdOf, nextRefreshToken } from '../../oauth/tokens/refresh-chain.js';
import { openSuccessor, sealSuccessor } from '../../oauth/tokens/refresh-successor.js';
import {
  findLiveRefreshToken,
  findRefreshToken,
  findRefreshTokenGeneration,
  findRefreshChainClient,
  revokeFamily,
  rotateRefreshToken,
} from '../../repositories/refresh-token.repository.js';
import { type AuditEvent, type AuditSink, noAudit } from '../audit/audit-log.js';
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

/** What a refresh request asks for, checked against the grant. */
interface Presented {
  token: string;
  hash: string;
  clientId: string;
  scopes: readonly string[];
  resources: readonly string[];
}

/** A retry answered with the successor the lost answer carried. */
interface Retry {
  row: RefreshTokenRow;
  token: string;
}

/**
 * The successor of a rotated generation when presenting it again is a retry, not reuse: the same client,
 * within `graceSeconds` of the rotation, and the successor (the generation right after it) still unused,
 * live and in a chain with no revoked member. Anything else (a successor already used, an older
 * generation, the window passed) is reuse. The successor is the one the lost answer carried, opened from
 * the rotated row with the presented token's value: a retry changes nothing in the database, so concurrent
 * or late retries all get the same token and the chain cannot fork (docs/refresh-tokens.md).
 */
async function retryWithinGrace(
  db: Db,
  row: RefreshTokenRow,
  p: Presented,
  graceSeconds: number,
  jkt: string | null,
  now: Date,
): Promise<Retry | undefined> {
  if (graceSeconds === 0 || row.rotated_at === null || row.successor_sealed === null) return undefined;
  // RFC 9449 §5: a bound chain answers only a proof by its key, a retry included.
  if (row.dpop_jkt !== null && row.dpop_jkt !== jkt) return undefined;
  if (now.getTime() - row.rotated_at.getTime() > graceSeconds * 1000) return undefined;
  const token = openSuccessor(p.token, row.successor_sealed);
  if (token === undefined) return undefined;
  const successor = await findLiveRefreshToken(db, hashSecret(token), p.clientId, now);
  if (!successor || successor.family_id !== row.family_id || successor.generation !== row.generation + 1)
    return undefined;
  return { row: successor, token };
}

/** Whether the generation after `row` was used after `now` (this request's arrival): the request was overtaken. */
async function overtaken(db: Db, row: RefreshTokenRow, now: Date): Promise<boolean> {
  const successor = await findRefreshTokenGeneration(db, row.family_id, row.generation + 1);
  return successor?.rotated_at != null && successor.rotated_at > now;
}

/**
 * Why a rotation found nothing: a retry within the grace window (answered with the successor), reuse
 * (revoke the chain), a scope or resource beyond the grant, or just invalid.
 */
async function afterFailedRotation(
  db: Db,
  p: Presented,
  graceSeconds: number,
  jkt: string | null,
  now: Date,
  audit: AuditSink,
): Promise<Retry | OAuthError> {
  const row = await findRefreshToken(db, p.hash);
  if (!row) {
    // The janitor deletes rotated generations once neither a retry nor an overtaken request can need them
    // (docs/refresh-tokens.md), so a token of a chain that still exists is a past generation: reuse
    // (RFC 9700 §4.14.2), by this client or another, exactly as if its row were still there.
    const familyId = chainIdOf(p.token);
    if (familyId !== undefined && (await findRefreshChainClient(db, familyId)) !== undefined) {
      await revokeFamily(db, familyId, now);
      return new OAuthError('invalid_grant', 'the refresh token was already used; its chain is revoked');
    }
    return new OAuthError('invalid_grant', INVALID);
  }
  if (row.client_id !== p.clientId) {
    // RFC 6749 §10.4: bound to its client. A rotated token in another client's hands has leaked: that is
    // reuse (RFC 9700 §4.14.2), never a retry. A live one is refused and left alone.
    if (row.rotated_at) {
      await revokeFamily(db, row.family_id, now);
      audit.record(reuseEvent(row, p.clientId));
    }
    return new OAuthError('invalid_grant', INVALID);
  }
  if (row.revoked_at) {
    // A revocation may have raced a rotation: make sure no later generation of the chain stays live.
    await revokeFamily(db, row.family_id, now);
    return new OAuthError('invalid_grant', INVALID);
  }
  if (row.rotated_at) {
    const retry = await retryWithinGrace(db, row, p, graceSeconds, jkt, now);
    if (!retry && graceSeconds > 0 && (await overtaken(db, row, now))) {
      // The chain moved on after this request arrived: a request held up on its way (a database that froze,
      // a retry its client gave up on) is old, not a second holder of the chain. Nothing is issued to it.
      return new OAuthError('invalid_grant', 'the refresh token was already rotated; use the newest one');
    }
    if (!retry) {
      // RFC 9700 §4.14.2: an invalidated refresh token presented again reveals that two parties hold the
      // chain; the server cannot tell which is the legitimate one, so the whole chain is revoked.
      await revokeFamily(db, row.family_id, now);
      audit.record(reuseEvent(row, p.clientId));
      return new OAuthError('invalid_grant', 'the refresh token was already used; its chain is revoked');
    }
    // A retry may narrow the scope like any refresh, never widen it (RFC 6749 §6; RFC 8707 §2.2).
    if (firstMissing(p.scopes, retry.row.scopes) !== undefined)
      return new OAuthError('invalid_scope', 'the requested scope exceeds the grant');
    if (firstMissing(p.resources, retry.row.resources) !== undefined)
      return new OAuthError('invalid_target', 'a requested resource was not granted');
    return retry;
  }
  if (row.expires_at <= now) return new OAuthError('invalid_grant', INVALID);
  // RFC 6749 §6: a refresh may narrow the scope, never widen it; RFC 8707 §2.2: only granted resources.
  if (firstMissing(p.scopes, row.scopes) !== undefined)
    return new OAuthError('invalid_scope', 'the requested scope exceeds the grant');
  if (firstMissing(p.resources, row.resources) !== undefined)
    return new OAuthError('invalid_target', 'a requested resource was not granted');
  // RFC 9449 §5: a public client's chain is bound to its DPoP key; every refresh proves that key. The
  // token stays usable for the client that holds the key.
  if (row.dpop_jkt !== null && row.dpop_jkt !== jkt)
    return new OAuthError(
      'invalid_grant',
      jkt === null
        ? 'the refresh token is bound to a DPoP key; send a DPoP proof by that key'
        : 'the refresh token is bound to another DPoP key',
    );
  // Live, in scope, yet not rotated: its chain has a revoked member (a revocation raced a rotation).
  await revokeFamily(db, row.family_id, now);
  return new OAuthError('invalid_grant', INVALID);
}

/** The audit event of a detected reuse (docs/audit.md): the chain, never the token. */
function reuseEvent(row: RefreshTokenRow, presentedBy: string): AuditEvent {
  return {
    type: 'refresh.reuse_detected',
    actor: 'client',
    subject: row.sub,
    clientId: presentedBy,
    details: {
      chain: row.family_id,
      generation: row.generation,
      chain_revoked: true,
      ...(row.client_id === presentedBy ? {} : { chain_client_id: row.client_id }),
    },
  };
}

/** The grant_type this module serves. */
export const grantType = 'refresh_token';

/**
 * RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): every use returns a new refresh token;
 * presenting an already-rotated one is reuse and revokes the whole chain, except for the client's retry
 * of the generation it just rotated, within REFRESH_TOKEN_GRACE_SECONDS and before it used the successor:
 * that retry gets the successor again with a new access token (its answer was lost, not stolen).
 * A chain bound to a DPoP key rotates, or answers a retry, only for a proof by that key (RFC 9449 §5).
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

  const p: Presented = {
    token: presented,
    hash: hashSecret(presented),
    clientId: client.client_id,
    scopes: scopes ?? [],
    resources,
  };
  const jkt = proof?.jkt ?? null;
  // The same chain tag, fresh bytes: a past generation still names its chain after its row is gone.
  let next = nextRefreshToken(presented);
  let rotated = await rotateRefreshToken(db, {
    tokenHash: p.hash,
    clientId: p.clientId,
    newHash: hashSecret(next),
    scopes: p.scopes,
    resources,
    sealedSuccessor: sealSuccessor(presented, next),
    jkt,
    now,
  });
  if (!rotated) {
    const outcome = await afterFailedRotation(db, p, ctx.config.flow.refreshGrace, jkt, now, audit);
    if (outcome instanceof OAuthError) throw outcome;
    ({ row: rotated, token: next } = outcome);
  }
  const wanted = scopes ?? rotated.scopes;
  const granted = wanted.filter(scopeAllowed);
  const audience = audienceFor(resources, rotated.resources).filter(resourceAllowed);
  // A token with fewer scopes than asked always says so (RFC 6749 §5.1); with none left, there is no grant.
  // A grant for identity alone (openid, no resource) has no resource audience: its token is for /userinfo.
  const resourcesLost = audience.length === 0 && (rotated.resources.length > 0 || !isOpenIdRequest(granted));
  if (resourcesLost || (wanted.length > 0 && granted.length === 0)) {
    // Nothing the grant covers is served any more: the grant is dead, so is its chain.
    await revokeFamily(db, rotated.family_id, now);
    throw new OAuthError('invalid_grant', 'nothing the grant covers is allowed any more; authorize again');
  }
  // RFC 9449 §5: the new access token is bound whenever a proof came, the chain bound or not.
  return userTokenResponse(rotated, client, ctx, audience, granted, next, proof?.jkt);
}
