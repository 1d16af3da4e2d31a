import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// OpenID Connect needs a public name for a Gatehouse session: the `sid` claim of ID tokens and logout
// tokens (OpenID Connect Front-/Back-Channel Logout 1.0). The cookie's value is secret and only its hash
// is stored, so neither can be published; `sid` is a separate random value (gen_random_uuid is core since
// Postgres 13, 122 random bits), unique, and carried onto the codes a session issues.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('sessions')
    .addColumn('sid', 'text', (col) => col.notNull().defaultTo(sql`replace(gen_random_uuid()::text, '-', '')`))
    .execute();
  await db.schema.createIndex('sessions_sid').on('sessions').column('sid').unique().execute();
  await db.schema.alterTable('authorization_codes').addColumn('sid', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('authorization_codes').dropColumn('sid').execute();
  await db.schema.dropIndex('sessions_sid').execute();
  await db.schema.alterTable('sessions').dropColumn('sid').execute();
}
