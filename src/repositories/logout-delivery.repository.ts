import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { LogoutDeliveryRow } from '../db/tables/logout.table.js';

/**
 * Claims up to `limit` due deliveries for this replica: in one statement their attempt is counted and
 * their next attempt pushed `leaseUntil` away, picking rows with FOR UPDATE SKIP LOCKED, so two replicas
 * never claim the same row and a replica that dies mid-delivery leaves it due again once the lease ends.
 */
export async function claimDueLogoutDeliveries(
  db: Db,
  now: Date,
  leaseUntil: Date,
  limit: number,
): Promise<LogoutDeliveryRow[]> {
  return db
    .updateTable('logout_deliveries')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: leaseUntil }))
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('logout_deliveries')
        .select('id')
        .where('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .execute();
}

/** Removes a delivery: done, given up, or no longer wanted. */
export async function deleteLogoutDelivery(db: Db, id: string): Promise<void> {
  await db.deleteFrom('logout_deliveries').where('id', '=', id).execute();
}

/** Schedules a failed delivery's next attempt. */
export async function rescheduleLogoutDelivery(db: Db, id: string, at: Date, error: string): Promise<void> {
  await db
    .updateTable('logout_deliveries')
    .set({ next_attempt_at: at, last_error: error.slice(0, 500) })
    .where('id', '=', id)
    .execute();
}

/** Deliveries still queued (the admin API's and tests' view), oldest first. */
export async function listLogoutDeliveries(db: Db): Promise<LogoutDeliveryRow[]> {
  return db
    .selectFrom('logout_deliveries')
    .selectAll()
    .orderBy('created_at')
    .orderBy(sql`id`)
    .execute();
}
