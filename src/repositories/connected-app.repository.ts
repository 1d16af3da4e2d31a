import { sql } from 'kysely';
import type { Db } from '../db/database.js';

/**
 * When each client last acted for a user, by client: the newest of its refresh-token rows (a code redemption
 * or a refresh writes one; index refresh_tokens_sub_client) and of its sign-ins through a Gatehouse session
 * (session_clients, reached through sessions_sub). Read only by the connected-apps page: the token endpoint
 * writes nothing extra for it.
 */
export async function lastUsedByClient(db: Db, sub: string): Promise<Map<string, Date>> {
  const refreshed = db
    .selectFrom('refresh_tokens')
    .select(['client_id', (eb) => eb.fn.max('created_at').as('at')])
    .where('sub', '=', sub)
    .groupBy('client_id');
  const signedIn = db
    .selectFrom('session_clients')
    .innerJoin('sessions', 'sessions.sid', 'session_clients.sid')
    .select(['session_clients.client_id', (eb) => eb.fn.max('session_clients.created_at').as('at')])
    .where('sessions.sub', '=', sub)
    .groupBy('session_clients.client_id');
  const rows = await refreshed.unionAll(signedIn).execute();
  const out = new Map<string, Date>();
  for (const { client_id, at } of rows) {
    if (at === null) continue;
    const when = at instanceof Date ? at : new Date(at);
    const known = out.get(client_id);
    if (!known || known < when) out.set(client_id, when);
  }
  return out;
}

/** The host claims kept for a user's OpenID Connect grants, by client (granted_claims). */
export async function grantedClaimsByClient(db: Db, sub: string): Promise<Map<string, Record<string, unknown>>> {
  const rows = await db.selectFrom('granted_claims').select(['client_id', 'claims']).where('sub', '=', sub).execute();
  return new Map(rows.map((row) => [row.client_id, row.claims]));
}

/**
 * Tells a client that a user's sessions with it are over because the user revoked it: queues a logout token
 * (OpenID Connect Back-Channel Logout 1.0 §2.5) for every session of `sub` still within its absolute lifetime
 * that signed in to the client (session_clients), when the client has a backchannel_logout_uri and is
 * enabled; then forgets those pairs, so a later sign-out does not tell the client a second time. The
 * Gatehouse sessions themselves stay. Returns how many tokens were queued. Run it in the revoking transaction.
 */
export async function queueClientLogouts(db: Db, sub: string, clientId: string, at: Date): Promise<number> {
  const queued = await db
    .insertInto('logout_deliveries')
    .columns(['client_id', 'sub', 'sid', 'next_attempt_at'])
    .expression((eb) =>
      eb
        .selectFrom('session_clients')
        .innerJoin('sessions', 'sessions.sid', 'session_clients.sid')
        .innerJoin('clients', 'clients.client_id', 'session_clients.client_id')
        .select([
          'session_clients.client_id',
          'sessions.sub',
          'session_clients.sid',
          sql<Date>`${at}::timestamptz`.as('next_attempt_at'),
        ])
        .where('sessions.sub', '=', sub)
        .where('session_clients.client_id', '=', clientId)
        .where('sessions.revoked_at', 'is', null)
        .where('sessions.expires_at', '>', at)
        .where('clients.backchannel_logout_uri', 'is not', null)
        .where('clients.disabled_at', 'is', null),
    )
    .executeTakeFirst();
  await db
    .deleteFrom('session_clients')
    .where('client_id', '=', clientId)
    .where('sid', 'in', (eb) => eb.selectFrom('sessions').select('sid').where('sub', '=', sub))
    .execute();
  return Number(queued.numInsertedOrUpdatedRows ?? 0n);
}
