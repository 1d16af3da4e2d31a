import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Ending a session revokes the online OpenID Connect chains it started (Back-Channel Logout 1.0 §2.7). It
// found them through the codes (authorization_codes.sid, not indexed: a scan of every code per sign-out),
// and the janitor now deletes codes at expiry, so it reads the chain's own sid instead. Only chains started
// in a browser session have one; the partial index leaves the others (client-side grants, chains from
// before sids) out.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('refresh_tokens_sid')
    .on('refresh_tokens')
    .column('sid')
    .where(sql.ref('sid'), 'is not', null)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('refresh_tokens_sid').execute();
}
