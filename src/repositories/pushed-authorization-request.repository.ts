import type { Db } from '../db/database.js';
import type {
  NewPushedAuthorizationRequestRow,
  PushedAuthorizationRequestRow,
} from '../db/tables/pushed-authorization-request.table.js';

/** Stores a pushed authorization request (RFC 9126 §2.2). */
export async function createPushedAuthorizationRequest(db: Db, row: NewPushedAuthorizationRequestRow): Promise<void> {
  await db.insertInto('pushed_authorization_requests').values(row).execute();
}

/**
 * Uses a pushed request exactly once (RFC 9126 §4): one conditional UPDATE, so of concurrent callers one
 * wins. Only the client that pushed it may use it: a request_uri presented with another client_id is
 * not consumed, so it cannot be burnt by someone who merely saw it. Undefined when it is unknown, expired,
 * already used or another client's.
 */
export async function consumePushedAuthorizationRequest(
  db: Db,
  requestUriHash: string,
  clientId: string,
  now: Date,
): Promise<PushedAuthorizationRequestRow | undefined> {
  return db
    .updateTable('pushed_authorization_requests')
    .set({ consumed_at: now })
    .where('request_uri_hash', '=', requestUriHash)
    .where('client_id', '=', clientId)
    .where('consumed_at', 'is', null)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
}
