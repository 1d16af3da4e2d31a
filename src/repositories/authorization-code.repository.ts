import type { Db } from '../db/database.js';
import type { AuthorizationCodeRow, NewAuthorizationCodeRow } from '../db/tables/authorization-code.table.js';

/** Stores a new authorization code (its hash). */
export async function createAuthorizationCode(db: Db, row: NewAuthorizationCodeRow): Promise<void> {
  await db.insertInto('authorization_codes').values(row).execute();
}

/** A code as stored, consumed or not (to recognise a replay). */
export async function findAuthorizationCode(db: Db, codeHash: string): Promise<AuthorizationCodeRow | undefined> {
  return db.selectFrom('authorization_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
}
