import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// When a user's grants were revoked (all of them, client_id null, or one client's): access tokens are
// self-contained JWTs that outlive the revocation, so /introspect reads this to call the ones issued
// before it inactive. A row matters only while such tokens can be unexpired; the janitor deletes it after.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('grant_revocations')
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text')
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('grant_revocations_sub').on('grant_revocations').columns(['sub', 'revoked_at']).execute();
  await db.schema.createIndex('grant_revocations_revoked_at').on('grant_revocations').column('revoked_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('grant_revocations').execute();
}
