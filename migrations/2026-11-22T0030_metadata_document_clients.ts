import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Clients resolved from Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document) get
// a row too, since authorization requests, codes, refresh tokens and consents reference clients.client_id.
// `clients_source_check` is the name Postgres (and PGlite) gave the column check of the first migration.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').dropConstraint('clients_source_check').execute();
  await db.schema
    .alterTable('clients')
    .addCheckConstraint('clients_source_check', sql`source in ('admin', 'file', 'registration', 'metadata_document')`)
    .execute();
}

// Going down forgets metadata-document clients (their grants and tokens go with them by cascade): the
// narrower check could not hold them, and they are re-created from their documents on next use.
export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('clients').where('source', '=', 'metadata_document').execute();
  await db.schema.alterTable('clients').dropConstraint('clients_source_check').execute();
  await db.schema
    .alterTable('clients')
    .addCheckConstraint('clients_source_check', sql`source in ('admin', 'file', 'registration')`)
    .execute();
}
