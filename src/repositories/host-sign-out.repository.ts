import type { Db } from '../db/database.js';

/**
 * Records a host sign-out message's jti until `expiresAt`; false when it was already recorded (a replay).
 * Expired entries are deleted on the way: a message past its exp is refused before it gets here.
 */
export async function rememberHostSignOutJti(db: Db, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
  await db.deleteFrom('host_sign_out_jtis').where('expires_at', '<', now).execute();
  const inserted = await db
    .insertInto('host_sign_out_jtis')
    .values({ jti, expires_at: expiresAt })
    .onConflict((oc) => oc.column('jti').doNothing())
    .returning('jti')
    .executeTakeFirst();
  return inserted !== undefined;
}
