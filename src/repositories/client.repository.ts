import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { ClientRow, ClientUpdate, NewClientRow } from '../db/tables/client.table.js';

/** Inserts a client; returns the stored row. */
export async function createClient(db: Db, client: NewClientRow): Promise<ClientRow> {
  return db.insertInto('clients').values(client).returningAll().executeTakeFirstOrThrow();
}

/** One client by id, or undefined. */
export async function findClientById(db: Db, clientId: string): Promise<ClientRow | undefined> {
  return db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
}

/** Every client, oldest first. */
export async function listClients(db: Db): Promise<ClientRow[]> {
  return db.selectFrom('clients').selectAll().orderBy('created_at').orderBy('client_id').execute();
}

/** Changes a client's columns (and its updated_at); undefined when there is no such client. */
export async function updateClient(db: Db, clientId: string, changes: ClientUpdate): Promise<ClientRow | undefined> {
  return db
    .updateTable('clients')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('client_id', '=', clientId)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes a client (its grants and tokens go with it by cascade); whether it existed. */
export async function deleteClient(db: Db, clientId: string): Promise<boolean> {
  const result = await db.deleteFrom('clients').where('client_id', '=', clientId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Replaces a client's secret hash and records when; undefined when there is no such client. */
export async function rotateClientSecret(db: Db, clientId: string, secretHash: string): Promise<ClientRow | undefined> {
  return db
    .updateTable('clients')
    .set({ secret_hash: secretHash, secret_rotated_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
    .where('client_id', '=', clientId)
    .returningAll()
    .executeTakeFirst();
}

/** Disables a client (keeping when it was first disabled) or enables it; undefined when there is no such client. */
export async function setClientDisabled(db: Db, clientId: string, disabled: boolean): Promise<ClientRow | undefined> {
  return db
    .updateTable('clients')
    .set({ disabled_at: disabled ? sql<Date>`coalesce(disabled_at, now())` : null, updated_at: sql<Date>`now()` })
    .where('client_id', '=', clientId)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Records that a client was used, unless that was already recorded within `minIntervalSeconds`
 * (so many replicas touching one client still write about once per interval).
 */
export async function touchClientLastUsed(db: Db, clientId: string, minIntervalSeconds = 3600): Promise<void> {
  await db
    .updateTable('clients')
    .set({ last_used_at: sql<Date>`now()` })
    .where('client_id', '=', clientId)
    .where((eb) =>
      eb.or([
        eb('last_used_at', 'is', null),
        eb('last_used_at', '<', sql<Date>`now() - make_interval(secs => ${minIntervalSeconds})`),
      ]),
    )
    .execute();
}

/** The client metadata columns a client-id document sets (ClientMetadata of src/oauth/client-metadata.ts). */
type ClientMetadataColumns = Omit<
  NewClientRow,
  | 'client_id'
  | 'secret_hash'
  | 'source'
  | 'created_at'
  | 'updated_at'
  | 'secret_rotated_at'
  | 'last_used_at'
  | 'disabled_at'
  | 'registration_access_token_hash'
  | 'document_expires_at'
>;

/**
 * Creates or refreshes the row of a client resolved from its client-id document (stored with source
 * 'metadata_document'), fresh until
 * `documentExpiresAt`, in one statement so replicas resolving the same client at once neither fail nor
 * duplicate it. A refresh changes only the metadata columns and the expiry (an operator's disabled_at
 * stays). A client of another source with that id (pre-registered by an operator) is never overwritten:
 * undefined is returned then.
 */
export async function upsertClientIdDocumentClient(
  db: Db,
  clientId: string,
  metadata: ClientMetadataColumns,
  documentExpiresAt: Date,
): Promise<ClientRow | undefined> {
  return db
    .insertInto('clients')
    .values({
      ...metadata,
      client_id: clientId,
      secret_hash: null,
      source: 'metadata_document',
      secret_rotated_at: null,
      last_used_at: null,
      disabled_at: null,
      document_expires_at: documentExpiresAt,
    })
    .onConflict((oc) =>
      oc
        .column('client_id')
        // secret_hash too: the document's client is public, whatever an operator changed meanwhile.
        .doUpdateSet({
          ...metadata,
          secret_hash: null,
          document_expires_at: documentExpiresAt,
          updated_at: sql<Date>`now()`,
        })
        .where('clients.source', '=', 'metadata_document'),
    )
    .returningAll()
    .executeTakeFirst();
}

/**
 * Deletes the client-id document clients that nothing live references (an unexpired authorization
 * request, an unconsumed unexpired code, an unrevoked unexpired refresh token, a remembered consent) and
 * that were neither fetched (updated_at) nor used at the token endpoint (last_used_at) for
 * `unusedForSeconds`; their expired grants go with them by cascade. Returns the ids deleted. /authorize
 * stores such a client again from its document if it comes back.
 */
export async function deleteUnusedClientIdDocumentClients(db: Db, unusedForSeconds: number): Promise<string[]> {
  const cutoff = () => sql<Date>`now() - make_interval(secs => ${unusedForSeconds})`;
  const now = sql<Date>`now()`;
  const rows = await db
    .deleteFrom('clients')
    .where('source', '=', 'metadata_document')
    .where('updated_at', '<', cutoff())
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', cutoff())]))
    .where((eb) => {
      const client = eb.ref('clients.client_id');
      return eb.and([
        eb.not(
          eb.exists(
            eb
              .selectFrom('authorization_requests as r')
              .select('r.id')
              .where('r.client_id', '=', client)
              .where('r.expires_at', '>', now),
          ),
        ),
        eb.not(
          eb.exists(
            eb
              .selectFrom('authorization_codes as c')
              .select('c.code_hash')
              .where('c.client_id', '=', client)
              .where('c.consumed_at', 'is', null)
              .where('c.expires_at', '>', now),
          ),
        ),
        eb.not(
          eb.exists(
            eb
              .selectFrom('refresh_tokens as t')
              .select('t.token_hash')
              .where('t.client_id', '=', client)
              .where('t.revoked_at', 'is', null)
              .where('t.expires_at', '>', now),
          ),
        ),
        eb.not(eb.exists(eb.selectFrom('consents as g').select('g.sub').where('g.client_id', '=', client))),
      ]);
    })
    .returning('client_id')
    .execute();
  return rows.map((row) => row.client_id);
}

/** How many clients are registered and not disabled. */
export async function countEnabledClients(db: Db): Promise<number> {
  const row = await db
    .selectFrom('clients')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('disabled_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
