import type { Db } from '../db/database.js';
import type { AuthorizationCodeRow, NewAuthorizationCodeRow } from '../db/tables/authorization-code.table.js';

/** Stores a new authorization code (its hash). */
export async function createAuthorizationCode(db: Db, row: NewAuthorizationCodeRow): Promise<void> {
  await db.insertInto('authorization_codes').values(row).execute();
}

/**
 * Redeems a code exactly once: one conditional UPDATE … RETURNING, so of any number of concurrent
 * redemptions only one sees the row. Expired or already consumed codes return undefined.
 */
export async function consumeAuthorizationCode(db: Db, codeHash: string, familyId: string): Promise<AuthorizationCodeRow | undefined> {
  return db
    .updateTable('authorization_codes')
    .set({ consumed_at: new Date(), family_id: familyId })
    .where('code_hash', '=', codeHash)
    .where('consumed_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returningAll()
    .executeTakeFirst();
}

/** A code as stored, consumed or not (to recognise a replay). */
export async function findAuthorizationCode(db: Db, codeHash: string): Promise<AuthorizationCodeRow | undefined> {
  return db.selectFrom('authorization_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
}
