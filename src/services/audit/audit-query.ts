import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';
import {
  type AuditEventFilter,
  listAuditEvents,
  type StoredAuditEvent,
} from '../../repositories/audit-event.repository.js';

/** The query's parameters as given (query string or CLI flags), all optional strings. */
export interface AuditQuery {
  subject?: string | undefined;
  client_id?: string | undefined;
  /** An exact type, or a prefix ending in a dot (`consent.`). */
  type?: string | undefined;
  /** RFC 3339 date-time or date, or an age such as `24h` / `7d` / `30m` (that long before now). */
  since?: string | undefined;
  until?: string | undefined;
  /** 1 to MAX_LIMIT; DEFAULT_LIMIT when absent. */
  limit?: string | undefined;
  /** `next_cursor` of the previous page. */
  cursor?: string | undefined;
}

/** An audit event as the admin API and the CLI show it (snake_case JSON). */
export interface AuditEventView {
  id: string;
  occurred_at: string;
  type: string;
  subject: string | null;
  client_id: string | null;
  actor: string;
  address: string | null;
  details: Record<string, unknown>;
}

/** One page, newest first; `next_cursor` is null on the last page. */
export interface AuditPage {
  events: AuditEventView[];
  next_cursor: string | null;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

const TYPE = /^[a-z][a-z_]*(\.[a-z_]+)*\.?$/;
// RFC 3339 §5.6 date-time (seconds and fraction optional), or a full-date alone (midnight UTC).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;
const AGE = /^(\d{1,6})([smhd])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const CURSOR = /^(\d{1,15})\.(\d{1,19})$/;

function invalid(message: string): DomainError {
  return new DomainError('invalid_input', message);
}

function text(name: string, value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value.length > max) throw invalid(`${name}: must be 1 to ${max} characters`);
  return value;
}

/** A point in time from an RFC 3339 date-time or date, or an age before `now`. */
function instant(name: string, value: string | undefined, now: Date): Date | undefined {
  if (value === undefined) return undefined;
  const age = AGE.exec(value);
  if (age) return new Date(now.getTime() - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]);
  const at = DATE_TIME.test(value) ? Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value) : NaN;
  if (Number.isNaN(at))
    throw invalid(`${name}: must be an RFC 3339 date-time (2026-12-06T10:00:00Z), a date, or an age such as 24h or 7d`);
  return new Date(at);
}

function limitOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const n = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw invalid(`limit: must be an integer from 1 to ${MAX_LIMIT}`);
  return n;
}

/** The opaque keyset cursor: the last row's time (ms) and id. */
function encodeCursor(event: StoredAuditEvent): string {
  return Buffer.from(`${event.occurred_at.getTime()}.${event.id}`).toString('base64url');
}

function decodeCursor(value: string | undefined): AuditEventFilter['before'] {
  if (value === undefined) return undefined;
  const match = /^[A-Za-z0-9_-]{1,64}$/.test(value) ? CURSOR.exec(Buffer.from(value, 'base64url').toString()) : null;
  if (!match) throw invalid('cursor: not a cursor this endpoint returned (use next_cursor as given)');
  return { occurredAt: new Date(Number(match[1])), id: match[2]! };
}

/** Checks the query's parameters; a bad one is an `invalid_input` DomainError naming it. */
export function auditFilter(query: AuditQuery, now: Date): AuditEventFilter {
  const type = text('type', query.type, 64);
  if (type !== undefined && !TYPE.test(type))
    throw invalid('type: must be an event type such as consent.granted, or a prefix ending in a dot (consent.)');
  const since = instant('since', query.since, now);
  const until = instant('until', query.until, now);
  if (since !== undefined && until !== undefined && since >= until) throw invalid('since: must be before until');
  const filter: AuditEventFilter = { limit: limitOf(query.limit) };
  const subject = text('subject', query.subject, 1024);
  const clientId = text('client_id', query.client_id, 2048);
  const before = decodeCursor(query.cursor);
  if (subject !== undefined) filter.subject = subject;
  if (clientId !== undefined) filter.clientId = clientId;
  if (type !== undefined) filter.type = type;
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  if (before !== undefined) filter.before = before;
  return filter;
}

function view(event: StoredAuditEvent): AuditEventView {
  return {
    id: event.id,
    occurred_at: event.occurred_at.toISOString(),
    type: event.type,
    subject: event.subject,
    client_id: event.client_id,
    actor: event.actor,
    address: event.address,
    details: event.details,
  };
}

/**
 * Audit events matching the query, newest first, one page at a time by keyset cursor (stable while
 * new events arrive); the admin API and the CLI share it.
 */
export async function queryAuditEvents(db: Db, query: AuditQuery, clock: Clock): Promise<AuditPage> {
  const filter = auditFilter(query, clock());
  // One row more than the page tells whether another page follows.
  const rows = await listAuditEvents(db, { ...filter, limit: filter.limit + 1 });
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    events: page.map(view),
    next_cursor: rows.length > filter.limit && last ? encodeCursor(last) : null,
  };
}
