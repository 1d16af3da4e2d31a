import type { Db } from '../db/database.js';

/** Replaces the claims kept for a user and client (at every sign-in that issues a code with `openid`). */
export async function saveGrantedClaims(
  db: Db,
  sub: string,
  clientId: string,
  claims: Record<string, unknown>,
  at: Date,
): Promise<void> {
  // jsonb through node-postgres: a JSON string, not an object.
  const json = JSON.stringify(claims);
  await db
    .insertInto('granted_claims')
    .values({ sub, client_id: clientId, claims: json, updated_at: at })
    .onConflict((oc) => oc.columns(['sub', 'client_id']).doUpdateSet({ claims: json, updated_at: at }))
    .execute();
}

/** The claims kept for a user and client, or undefined when none were. */
export async function findGrantedClaims(
  db: Db,
  sub: string,
  clientId: string,
): Promise<Record<string, unknown> | undefined> {
  const row = await db
    .selectFrom('granted_claims')
    .select('claims')
    .where('sub', '=', sub)
    .where('client_id', '=', clientId)
    .executeTakeFirst();
  return row?.claims;
}
