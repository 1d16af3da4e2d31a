import { type Kysely, type Transaction, sql } from 'kysely';
import type { Database, Db } from '../db/database.js';
import type { NewSigningKeyRow, SigningKeyRow } from '../db/tables/signing-key.table.js';

/** Every signing key, oldest first. */
export async function listSigningKeys(db: Db): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
}

/** The keys a JWKS publishes at `now`: next, active, and retired ones whose tokens may still be valid. */
export async function listPublishedSigningKeys(db: Db, now: Date): Promise<SigningKeyRow[]> {
  return db
    .selectFrom('signing_keys')
    .selectAll()
    .where((eb) => eb.or([eb('state', '<>', 'retired'), eb('expires_at', '>', now)]))
    .orderBy('created_at')
    .orderBy('kid')
    .execute();
}

/** One key by kid. */
export async function findSigningKey(db: Db, kid: string): Promise<SigningKeyRow | undefined> {
  return db.selectFrom('signing_keys').selectAll().where('kid', '=', kid).executeTakeFirst();
}

/** The key that signs now, if any. */
export async function findActiveSigningKey(db: Db): Promise<SigningKeyRow | undefined> {
  return db.selectFrom('signing_keys').selectAll().where('state', '=', 'active').executeTakeFirst();
}

/** The pending `next` key that activates first, if any. */
export async function findNextSigningKey(db: Db): Promise<SigningKeyRow | undefined> {
  return db
    .selectFrom('signing_keys')
    .selectAll()
    .where('state', '=', 'next')
    .orderBy('activate_at')
    .orderBy('created_at')
    .limit(1)
    .executeTakeFirst();
}

/** Stores a new key; `public_jwk` must already be JSON text (node-postgres would mangle an object). */
export async function insertSigningKey(db: Db, row: NewSigningKeyRow): Promise<SigningKeyRow> {
  return db.insertInto('signing_keys').values(row).returningAll().executeTakeFirstOrThrow();
}

/** Makes a key the signing one (the caller has retired the previous active key first). */
export async function activateSigningKey(db: Db, kid: string, at: Date): Promise<SigningKeyRow | undefined> {
  return db
    .updateTable('signing_keys')
    .set({ state: 'active', activated_at: at })
    .where('kid', '=', kid)
    .where('state', '=', 'next')
    .returningAll()
    .executeTakeFirst();
}

/** Retires a key; a key that is already retired only ever has its expiry brought forward. */
export async function retireSigningKey(
  db: Db,
  kid: string,
  at: Date,
  expiresAt: Date,
): Promise<SigningKeyRow | undefined> {
  return db
    .updateTable('signing_keys')
    .set((eb) => ({
      state: 'retired',
      retired_at: eb.fn.coalesce('retired_at', eb.val(at)),
      expires_at: sql<Date>`least(${eb.ref('expires_at')}, ${expiresAt})`,
    }))
    .where('kid', '=', kid)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Runs `fn` in a transaction holding a transaction-level advisory lock named `lockName`, so replicas
 * that generate, promote or retire keys at the same moment take turns and each sees the last one's work.
 */
export async function withSigningKeyLock<T>(
  db: Kysely<Database>,
  lockName: string,
  fn: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${lockName}))`.execute(trx);
    return fn(trx);
  });
}
