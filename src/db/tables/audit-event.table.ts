import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row of `audit_events`: one security-relevant event (docs/audit.md); never a secret, code or token. */
export interface AuditEventTable {
  /** bigint identity; read as text (`id::text`), so both drivers give the same string. */
  id: Generated<string>;
  occurred_at: Date;
  /** Dotted event type, e.g. `consent.granted`, `token.issued`. */
  type: string;
  /** The user's `sub`, when the event concerns a user. */
  subject: string | null;
  client_id: string | null;
  /** Who acted: user, client, admin or system. */
  actor: string;
  /** The requester's IP address, when the event comes from a request. */
  address: string | null;
  /** jsonb of non-secret facts: write it as JSON.stringify(obj) for node-postgres. */
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
}

export type AuditEventRow = Selectable<AuditEventTable>;
export type NewAuditEventRow = Insertable<AuditEventTable>;
