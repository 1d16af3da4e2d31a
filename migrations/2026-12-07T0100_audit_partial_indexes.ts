import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Every token response writes a `token.issued` row, so that type is nearly all of the table, and every row
// paid for an entry in each of four secondary indexes. Two of them now leave out rows no query can want
// from them:
// - by type: the `token.issued` rows. A question for that type (or a prefix holding it) wants most of the
//   table and is served by the time, subject or client index like an unfiltered one; a question for any
//   other type (or a prefix without it) implies `type <> 'token.issued'`, which Postgres proves, and is
//   served by this index, now a small fraction of the table's size.
// - by subject and by client: rows without one (client_credentials tokens have no subject; key and admin
//   events neither), since a filter always names a value.
// Each index is rebuilt: on a large table the migration holds writes to audit_events for the build (the
// audit log buffers meanwhile, and token requests never wait on it).
export async function up(db: Kysely<any>): Promise<void> {
  for (const [name, column, op, value] of [
    ['audit_events_type', 'type', '<>', 'token.issued'],
    ['audit_events_subject', 'subject', 'is not', null],
    ['audit_events_client_id', 'client_id', 'is not', null],
  ] as const) {
    await db.schema.dropIndex(name).execute();
    await db.schema
      .createIndex(name)
      .on('audit_events')
      .columns([column, 'occurred_at', 'id'])
      .where(sql.ref(column), op, value)
      .execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const [name, column] of [
    ['audit_events_type', 'type'],
    ['audit_events_subject', 'subject'],
    ['audit_events_client_id', 'client_id'],
  ] as const) {
    await db.schema.dropIndex(name).execute();
    await db.schema.createIndex(name).on('audit_events').columns([column, 'occurred_at', 'id']).execute();
  }
}
