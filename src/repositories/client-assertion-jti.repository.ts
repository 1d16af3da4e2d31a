import type { Db } from '../db/database.js';

/**
 * Records a client assertion's jti hash until `expiresAt`; false when it was already recorded (a replay,
 * RFC 7523 §3). One INSERT … ON CONFLICT DO NOTHING, so replicas racing on the same assertion let exactly
 * one through. An expired row left for the janitor is replaced: its assertion is refused for its exp anyway.
 */
export async function recordClientAssertionJti(db: Db, jtiHash: string, expiresAt: Date, now: Date): Promise<boolean> {
  const row = await db
    .insertInto('client_assertion_jtis')
    .values({ jti_hash: jtiHash, expires_at: expiresAt })
    .onConflict((oc) =>
      oc.column('jti_hash').doUpdateSet({ expires_at: expiresAt }).where('client_assertion_jtis.expires_at', '<=', now),
    )
    .returning('jti_hash')
    .executeTakeFirst();
  return row !== undefined;
}
