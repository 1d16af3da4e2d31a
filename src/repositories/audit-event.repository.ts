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

/**
 * Writes a batch of events in one INSERT whose rows come from a single JSON parameter (in order, so ids
 * follow the batch's order): one parameter to bind and one short statement to parse, however large the
 * batch, where a multi-row VALUES list would be 7 parameters per row. Nothing for an empty batch.
 */
export async function insertAuditEvents(db: Db, rows: readonly NewAuditEventRow[]): Promise<void> {
  if (rows.length === 0) return;
  // Each row's details are already JSON text: embedded as they are, not parsed and serialised again.
  const json = `[${rows
    .map(
      (row) =>
        `{"occurred_at":${JSON.stringify(new Date(row.occurred_at).toISOString())},"type":${JSON.stringify(row.type)},` +
        `"subject":${JSON.stringify(row.subject ?? null)},"client_id":${JSON.stringify(row.client_id ?? null)},` +
        `"actor":${JSON.stringify(row.actor)},"address":${JSON.stringify(row.address ?? null)},` +
        `"details":${row.details ?? '{}'}}`,
    )
    .join(',')}]`
    // Postgres text cannot hold NUL: one in a presented client id must not cost the batch its rows.
    .replaceAll('\\u0000', '\\ufffd');
  await db
    .insertInto('audit_events')
    .columns(['occurred_at', 'type', 'subject', 'client_id', 'actor', 'address', 'details'])
    .expression(
      sql`SELECT (e.value->>'occurred_at')::timestamptz, e.value->>'type', e.value->>'subject',
                 e.value->>'client_id', e.value->>'actor', e.value->>'address', e.value->'details'
          FROM jsonb_array_elements(${json}::jsonb) WITH ORDINALITY AS e(value, n)
          ORDER BY e.n`,
    )
    .execute();
}

/** Events matching the filter, newest first (occurred_at, then id), at most `limit`. */
export async function listAuditEvents(db: Db, filter: AuditEventFilter): Promise<StoredAuditEvent[]> {
  return auditEventsQuery(db, filter).execute();
}

/**
 * The query listAuditEvents runs (exported so a test can ask Postgres for its plan). The type index leaves
 * the token.issued rows out (migration 2026-12-07T0100); Postgres sees for itself that a type other than
 * that one, or a prefix range without it, can use the index.
 */
export function auditEventsQuery(db: Db, filter: AuditEventFilter) {
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
  return query.orderBy('occurred_at', 'desc').orderBy('id', 'desc').limit(filter.limit);
}

/** Deletes events that occurred before `before`, `batch` rows per statement; how many went. */
export async function deleteAuditEventsBefore(
  db: Db,
  before: Date,
  batch: number,
  step: <T>(statement: () => Promise<T>) => Promise<T> = (statement) => statement(),
): Promise<number> {
  let total = 0;
  for (;;) {
    const doomed = db.selectFrom('audit_events').select('id').where('occurred_at', '<', before).limit(batch);
    const result = await step(() => db.deleteFrom('audit_events').where('id', 'in', doomed).executeTakeFirst());
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < batch) return total;
  }
}
