import type { Db } from '../db/database.js';
import type { NewSessionRow, SessionRow } from '../db/tables/session.table.js';

/** Stores a new session (the caller hashed its id). */
export async function insertSession(db: Db, row: NewSessionRow): Promise<SessionRow> {
  return db.insertInto('sessions').values(row).returningAll().executeTakeFirstOrThrow();
}

/** The session with this id hash, whatever its state; the caller judges expiry and revocation. */
export async function findSession(db: Db, idHash: string): Promise<SessionRow | undefined> {
  return db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
}

/** Records use of a session; only moves last_seen_at forward, and only when it is older than `staleBefore`. */
export async function touchSession(db: Db, idHash: string, at: Date, staleBefore: Date): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ last_seen_at: at })
    .where('id_hash', '=', idHash)
    .where('last_seen_at', '<', staleBefore)
    .where('revoked_at', 'is', null)
    .execute();
}

/** Revokes one session; false when it was unknown or already revoked. */
export async function revokeSession(db: Db, idHash: string, at: Date): Promise<boolean> {
  const result = await db
    .updateTable('sessions')
    .set({ revoked_at: at })
    .where('id_hash', '=', idHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * The one "revoke a user's sessions" (sign-out everywhere, the admin API and CLI revoking a user): every
 * session of `sub` still live at `at` (not revoked, not past its absolute expiry) is revoked; returns how
 * many. An expired session is already over and is neither touched nor counted.
 */
export async function revokeSessionsFor(db: Db, sub: string, at: Date): Promise<number> {
  const result = await db
    .updateTable('sessions')
    .set({ revoked_at: at })
    .where('sub', '=', sub)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', at)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
