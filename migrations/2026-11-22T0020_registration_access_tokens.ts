import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// RFC 7592: a registered client manages itself with a registration access token; only its hash is kept.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').addColumn('registration_access_token_hash', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('registration_access_token_hash').execute();
}
