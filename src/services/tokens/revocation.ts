import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { hashSecret } from '../../oauth/secrets.js';
import { chainIdOf } from '../../oauth/tokens/refresh-chain.js';
import { findRefreshChainClient, findRefreshToken, revokeFamily } from '../../repositories/refresh-token.repository.js';

/**
 * RFC 7009 §2.1: revokes a refresh token's whole chain when the token is the caller's. Anything else
 * (unknown, an access token, another client's) changes nothing; the endpoint answers 200 either way
 * (§2.2), so this returns nothing that could tell them apart.
 */
export async function revokeToken(db: Db, token: string, clientId: string, clock: Clock): Promise<void> {
  const row = await findRefreshToken(db, hashSecret(token));
  if (row && row.client_id === clientId) await revokeFamily(db, row.family_id, clock());
  if (row) return;
  // A past generation the janitor deleted still names its chain: revoked as when its row was kept.
  const familyId = chainIdOf(token);
  if (familyId !== undefined && (await findRefreshChainClient(db, familyId)) === clientId)
    await revokeFamily(db, familyId, clock());
}
