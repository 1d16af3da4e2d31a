import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { NewAuditEventRow } from '../db/tables/audit-event.table.js';

/** An audit event as read back: the id as text, details parsed. */
export interface StoredAuditEvent {
  id: string;
  occurred_at: Date;
  type: string;
  subject: string | null;
  client_id: string | null;
  actor: string;
  address: string | null;
  details: Record<string, unknown>;
}

/** Which events to read, newest first; `before` is the keyset cursor (the last row of the previous page). */
export interface AuditEventFilter {
  subject?: string;
  clientId?: string;
  /** An exact type (`consent.granted`), or a prefix ending in a dot (`consent.`). */
  type?: string;
  /** Inclusive lower bound. */
  since?: Date;
  /** Exclusive upper bound. */
  until?: Date;
  before?: { occurredAt: Date; id: string };
  limit: number;
}

/** Writes a batch of events in one multi-row INSERT (nothing for an empty batch). */
export async function insertAuditEvents(db: Db, rows: readonly NewAuditEventRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('audit_events')
    .values([...rows])
    .execute();
}

/** Events matching the filter, newest first (occurred_at, then id), at most `limit`. */
export async function listAuditEvents(db: Db, filter: AuditEventFilter): Promise<StoredAuditEvent[]> {
  let query = db
    .selectFrom('audit_events')
    .select([
      sql<string>`id::text`.as('id'),
      'occurred_at',
      'type',
      'subject',
      'client_id',
      'actor',
      'address',
      'details',
    ]);
  if (filter.subject !== undefined) query = query.where('subject', '=', filter.subject);
  if (filter.clientId !== undefined) query = query.where('client_id', '=', filter.clientId);
  const type = filter.type;
  if (type !== undefined) {
    if (type.endsWith('.')) {
      // A prefix as a range ('/' sorts right after '.'), so the type index serves it and '_' is no wildcard.
      query = query.where('type', '>=', type).where('type', '<', `${type.slice(0, -1)}/`);
    } else query = query.where('type', '=', type);
  }
  if (filter.since !== undefined) query = query.where('occurred_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('occurred_at', '<', filter.until);
  const before = filter.before;
  if (before !== undefined)
    query = query.where(sql<boolean>`(occurred_at, id) < (${before.occurredAt}, ${before.id}::bigint)`);
  return query.orderBy('occurred_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
}

/** Deletes events that occurred before `before`, `batch` rows per statement; how many went. */
export async function deleteAuditEventsBefore(db: Db, before: Date, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const doomed = db.selectFrom('audit_events').select('id').where('occurred_at', '<', before).limit(batch);
    const result = await db.deleteFrom('audit_events').where('id', 'in', doomed).executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < batch) return total;
  }
}
