import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ConsentRow } from '../db/tables/consent.table.js';

/** The remembered consent of a user for a client, if any. */
export async function findConsent(db: Db, sub: string, clientId: string): Promise<ConsentRow | undefined> {
  return db
    .selectFrom('consents')
    .selectAll()
    .where('sub', '=', sub)
    .where('client_id', '=', clientId)
    .executeTakeFirst();
}

/** Remembers a consent decision at `at`, widening any earlier one (union of scopes and resources). */
export async function saveConsent(
  db: Db,
  sub: string,
  clientId: string,
  scopes: string[],
  resources: string[],
  at: Date = new Date(),
): Promise<ConsentRow> {
  return db
    .insertInto('consents')
    .values({ sub, client_id: clientId, scopes, resources })
    .onConflict((oc) =>
      oc.columns(['sub', 'client_id']).doUpdateSet({
        scopes: sql<string[]>`array(select distinct unnest(consents.scopes || excluded.scopes) order by 1)`,
        resources: sql<string[]>`array(select distinct unnest(consents.resources || excluded.resources) order by 1)`,
        updated_at: at,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}
