import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Until when a metadata-document client's stored document is fresh (its HTTP cache lifetime). Kept with
// the row, so that every replica can re-read the row often (an operator's disable or delete shows within
// CLIENT_CACHE_TTL_SECONDS) without fetching the document again before it is due. Null: not known to be
// fresh (other sources, or rows stored before this column), so /authorize fetches it.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').addColumn('document_expires_at', 'timestamptz').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('document_expires_at').execute();
}
