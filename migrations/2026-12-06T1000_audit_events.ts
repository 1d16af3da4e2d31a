import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// The audit trail (docs/audit.md): one row per security-relevant event (sign-in, consent, codes and
// tokens issued, refresh reuse, client and key changes, admin actions, failed client authentication).
// No foreign keys: an event outlives the client or user it names. Rows are written in batches by every
// replica and deleted by the janitor after AUDIT_RETENTION_DAYS. Keyset pagination reads newest first
// by (occurred_at, id); the filtered reads (subject, client, type) have their own indexes ending in the
// same pair.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('audit_events')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('client_id', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('address', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema.createIndex('audit_events_occurred_at').on('audit_events').columns(['occurred_at', 'id']).execute();
  await db.schema
    .createIndex('audit_events_subject')
    .on('audit_events')
    .columns(['subject', 'occurred_at', 'id'])
    .execute();
  await db.schema
    .createIndex('audit_events_client_id')
    .on('audit_events')
    .columns(['client_id', 'occurred_at', 'id'])
    .execute();
  await db.schema.createIndex('audit_events_type').on('audit_events').columns(['type', 'occurred_at', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_events').execute();
}
