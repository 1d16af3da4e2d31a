import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Every rotation (and every introspection or listing of a refresh token) asks whether its chain has a
// revoked member. Through the (family_id, generation) index that walks every earlier generation, so it
// grew with the chain, and with long chains the planner could pick a sequential scan of the whole table
// per rotation. Revoked rows are few (a revoked chain is dead, and the janitor removes it): a partial
// index over them answers the question with one probe. The build holds a SHARE lock on refresh_tokens
// (writes wait) for as long as it takes: seconds for millions of rows.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('refresh_tokens_revoked_family')
    .on('refresh_tokens')
    .column('family_id')
    .where(sql.ref('revoked_at'), 'is not', null)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('refresh_tokens_revoked_family').execute();
}
