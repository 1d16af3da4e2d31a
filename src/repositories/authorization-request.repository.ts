import type { Db } from '../db/database.js';
import type { AuthorizationRequestRow, NewAuthorizationRequestRow } from '../db/tables/authorization-request.table.js';

/** Stores a validated pending authorization request. */
export async function createAuthorizationRequest(
  db: Db,
  row: NewAuthorizationRequestRow,
): Promise<AuthorizationRequestRow> {
  return db.insertInto('authorization_requests').values(row).returningAll().executeTakeFirstOrThrow();
}

/** A pending request that has not expired at `now` and has not been completed; undefined otherwise. */
export async function findLiveAuthorizationRequest(
  db: Db,
  id: string,
  now: Date,
): Promise<AuthorizationRequestRow | undefined> {
  return db
    .selectFrom('authorization_requests')
    .selectAll()
    .where('id', '=', id)
    .where('expires_at', '>', now)
    .where('completed_at', 'is', null)
    .executeTakeFirst();
}

/**
 * Records the host's sign-in answer exactly once: the conditional UPDATE lets one concurrent caller
 * win; the others get undefined (already answered, expired or completed).
 */
export async function answerAuthorizationRequest(
  db: Db,
  id: string,
  sessionHash: string,
  now: Date,
): Promise<AuthorizationRequestRow | undefined> {
  return db
    .updateTable('authorization_requests')
    .set({ answered_at: now, session_hash: sessionHash })
    .where('id', '=', id)
    .where('answered_at', 'is', null)
    .where('completed_at', 'is', null)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
}

/** Attaches an existing session to a request that needs no host sign-in (the browser already has one). */
export async function attachSession(db: Db, id: string, sessionHash: string): Promise<void> {
  await db
    .updateTable('authorization_requests')
    .set({ session_hash: sessionHash })
    .where('id', '=', id)
    .where('completed_at', 'is', null)
    .execute();
}

/** Marks the request finished exactly once (code or error sent); undefined when another caller already did. */
export async function completeAuthorizationRequest(
  db: Db,
  id: string,
  now: Date,
): Promise<AuthorizationRequestRow | undefined> {
  return db
    .updateTable('authorization_requests')
    .set({ completed_at: now })
    .where('id', '=', id)
    .where('completed_at', 'is', null)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
}
