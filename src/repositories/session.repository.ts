import { type Expression, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import type { Database, Db } from '../db/database.js';
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

/** What ending sessions did. */
export interface EndedSessions {
  /** The `sid` of every session this call revoked (already revoked or expired ones are not counted). */
  sids: string[];
  /** Logout tokens queued for the clients those sessions issued codes to (Back-Channel Logout §2.3). */
  deliveries: number;
  /** Refresh tokens revoked with the sessions (their chains were online OpenID Connect grants, §2.7). */
  refreshTokens: number;
}

type SessionFilter = (eb: ExpressionBuilder<Database, 'sessions'>) => Expression<SqlBool>;

/**
 * The one "end sessions" statement set, in one transaction: revokes the live sessions `filter` selects,
 * then, for those sessions only:
 * - queues a logout token for every client the session issued a code to that registered a
 *   backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0 §2.3, §2.5), in the same
 *   transaction, so an ended session's logout is never lost and a rolled-back one never sent;
 * - revokes the refresh-token chains its codes started (every generation carries the session's sid) when
 *   they are online OpenID Connect grants (`openid` without `offline_access`): Back-Channel Logout §2.7
 *   says refresh tokens issued without offline_access to a session being logged out SHOULD be revoked,
 *   and those with it SHOULD NOT. A
 *   plain OAuth grant (no `openid`, an MCP client or an API client) is the user's authorization of an
 *   app, not a sign-in, and outlives the browser session; revoking it is the admin API's job.
 */
async function endSessions(db: Db, filter: SessionFilter, at: Date): Promise<EndedSessions> {
  const run = async (tx: Db): Promise<EndedSessions> => {
    const ended = await tx
      .updateTable('sessions')
      .set({ revoked_at: at })
      .where(filter)
      .where('revoked_at', 'is', null)
      .returning('sid')
      .execute();
    const sids = ended.map((row) => row.sid);
    if (sids.length === 0) return { sids, deliveries: 0, refreshTokens: 0 };
    const queued = await tx
      .insertInto('logout_deliveries')
      .columns(['client_id', 'sub', 'sid', 'next_attempt_at'])
      .expression((eb) =>
        eb
          .selectFrom('session_clients')
          .innerJoin('clients', 'clients.client_id', 'session_clients.client_id')
          .select([
            'session_clients.client_id',
            'session_clients.sub',
            'session_clients.sid',
            sql<Date>`${at}::timestamptz`.as('next_attempt_at'),
          ])
          .where('session_clients.sid', 'in', sids)
          .where('clients.backchannel_logout_uri', 'is not', null)
          .where('clients.disabled_at', 'is', null),
      )
      .executeTakeFirst();
    let refreshTokens = 0;
    // Repeated until it finds nothing, as revokeFamily does: a rotation committing meanwhile is seen by the next pass.
    for (let pass = 0; pass < 10; pass++) {
      const revoked = await tx
        .updateTable('refresh_tokens')
        .set({ revoked_at: at })
        .where('revoked_at', 'is', null)
        // The chain carries its session's sid and the grant's scopes from the code that started it (the
        // redemption copies them), so this does not depend on the code, which the janitor deletes at expiry.
        .where('sid', 'in', sids)
        .where(sql<boolean>`'openid' = any(scopes)`)
        .where(sql<boolean>`not ('offline_access' = any(scopes))`)
        .executeTakeFirst();
      const count = Number(revoked.numUpdatedRows);
      refreshTokens += count;
      if (count === 0) break;
    }
    return { sids, deliveries: Number(queued.numInsertedOrUpdatedRows ?? 0n), refreshTokens };
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

/** Ends one session by its id hash (see endSessions); `sids` is empty when it was unknown or already revoked. */
export async function endSession(db: Db, idHash: string, at: Date): Promise<EndedSessions> {
  return endSessions(db, (eb) => eb('id_hash', '=', idHash), at);
}

/** Ends one session by its public `sid`, only if it belongs to `sub` when given (see endSessions). */
export async function endSessionBySid(db: Db, sid: string, sub: string | null, at: Date): Promise<EndedSessions> {
  return endSessions(
    db,
    (eb) => (sub === null ? eb('sid', '=', sid) : eb.and([eb('sid', '=', sid), eb('sub', '=', sub)])),
    at,
  );
}

/**
 * Ends every session of `sub` still live at `at` (not revoked, not past its absolute expiry); see
 * endSessions. An expired session is already over and is neither touched nor counted.
 */
export async function endSessionsFor(db: Db, sub: string, at: Date): Promise<EndedSessions> {
  return endSessions(db, (eb) => eb.and([eb('sub', '=', sub), eb('expires_at', '>', at)]), at);
}

/** Revokes one session (see endSession); false when it was unknown or already revoked. */
export async function revokeSession(db: Db, idHash: string, at: Date): Promise<boolean> {
  return (await endSession(db, idHash, at)).sids.length > 0;
}

/**
 * The one "revoke a user's sessions" (sign-out everywhere, the admin API and CLI revoking a user): every
 * session of `sub` still live at `at` is ended (endSessionsFor, which queues back-channel logouts);
 * returns how many.
 */
export async function revokeSessionsFor(db: Db, sub: string, at: Date): Promise<number> {
  return (await endSessionsFor(db, sub, at)).sids.length;
}

/** Remembers that a session issued a code to a client (Back-Channel Logout §2.3); once per pair. */
export async function recordSessionClient(db: Db, sid: string, clientId: string, sub: string): Promise<void> {
  await db
    .insertInto('session_clients')
    .values({ sid, client_id: clientId, sub })
    .onConflict((oc) => oc.columns(['sid', 'client_id']).doNothing())
    .execute();
}
