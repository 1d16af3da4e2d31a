import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import type { DatabaseHandle } from '../db/connect.js';
import type { Database, SchemalessDb } from '../db/database.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { deleteAuditEventsBefore } from '../repositories/audit-event.repository.js';

/** Rows deleted per statement, so a large backlog never holds long locks on a hot table. */
export const JANITOR_BATCH = 5000;

/** What one sweep deleted, per table. */
export interface SweepResult {
  authorization_requests: number;
  authorization_codes: number;
  refresh_tokens: number;
  sessions: number;
  grant_revocations: number;
  dpop_proofs: number;
  pushed_authorization_requests: number;
  client_assertion_jtis: number;
  audit_events: number;
}

export interface SweepOptions {
  /** Seconds a row is kept after it stopped being usable (expired, or revoked), for investigation. */
  retentionSeconds: number;
  /** A session's idle lifetime: one unused for longer is over even before its absolute expiry. */
  sessionIdleSeconds: number;
  /**
   * How long an access token can be accepted after it is issued (ACCESS_TOKEN_TTL_SECONDS plus
   * CLOCK_SKEW_SECONDS): a grant revocation older than that can no longer concern any live token.
   */
  accessTokenLifetimeSeconds: number;
  /** The time the sweep measures ages against; the system clock by default. */
  clock?: Clock;
  batch?: number;
  /** AUDIT_RETENTION_DAYS in seconds: audit events older than this go; 0 or absent keeps them. */
  auditRetentionSeconds?: number;
}

/**
 * Deletes rows that can no longer be used by anyone, once they are older than the retention period:
 * pending authorization requests and codes past expiry, refresh tokens past their chain's absolute
 * expiry or revoked, sessions past expiry, idle too long, or revoked, grant revocations older than
 * any access token they could concern, pushed authorization requests past expiry, and client assertion
 * ids once their assertion has expired, and remembered DPoP proofs past their window. Nothing still valid is touched,
 * so a sweep never changes an answer Gatehouse gives: every deleted row would already be refused.
 */
export async function sweepExpired(db: Kysely<Database>, options: SweepOptions): Promise<SweepResult> {
  const now = (options.clock ?? systemClock)();
  const before = new Date(now.getTime() - options.retentionSeconds * 1000);
  const idleBefore = new Date(before.getTime() - options.sessionIdleSeconds * 1000);
  const revocationsBefore = new Date(before.getTime() - options.accessTokenLifetimeSeconds * 1000);
  const batch = options.batch ?? JANITOR_BATCH;
  return {
    authorization_requests: await deleteInBatches(
      db,
      'authorization_requests',
      (eb) => eb('expires_at', '<', before),
      batch,
    ),
    // Chains before codes, so that a code whose chain goes in this sweep goes with it.
    refresh_tokens: await deleteChains(db, before, batch),
    // A redeemed code stays while the chain it started exists: replaying it must still revoke that chain
    // (RFC 6749 §4.1.2, RFC 9700 §4.5), however long ago it expired.
    authorization_codes: await deleteInBatches(
      db,
      'authorization_codes',
      (eb) =>
        eb.and([
          eb('expires_at', '<', before),
          eb.or([
            eb('family_id', 'is', null),
            eb.not(
              eb.exists(
                eb
                  .selectFrom('refresh_tokens as chain')
                  .select(sql.lit(1).as('one'))
                  .whereRef('chain.family_id', '=', sql.ref('authorization_codes.family_id')),
              ),
            ),
          ]),
        ]),
      batch,
    ),
    sessions: await deleteInBatches(
      db,
      'sessions',
      (eb) =>
        eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before), eb('last_seen_at', '<', idleBefore)]),
      batch,
    ),
    grant_revocations: await deleteInBatches(
      db,
      'grant_revocations',
      (eb) => eb('revoked_at', '<', revocationsBefore),
      batch,
    ),
    // A remembered DPoP proof matters only while its iat is inside the window (RFC 9449 §11.1); no retention.
    dpop_proofs: await deleteInBatches(db, 'dpop_proofs', (eb) => eb('expires_at', '<', now), batch),
    // RFC 9126 request_uris past their short lifetime, used or not.
    pushed_authorization_requests: await deleteInBatches(
      db,
      'pushed_authorization_requests',
      (eb) => eb('expires_at', '<', before),
      batch,
    ),
    // A client assertion's jti matters only until the assertion expires (its exp refuses it after that),
    // so these go at expiry: nothing in them is worth keeping for an investigation.
    client_assertion_jtis: await deleteInBatches(
      db,
      'client_assertion_jtis',
      (eb) => eb('expires_at', '<', now),
      batch,
    ),
    // The audit trail has its own retention (AUDIT_RETENTION_DAYS), far longer than the rows above.
    audit_events: options.auditRetentionSeconds
      ? await deleteAuditEventsBefore(db, new Date(now.getTime() - options.auditRetentionSeconds * 1000), batch)
      : 0,
  };
}

/**
 * Deletes whole refresh-token chains, `batch` chains per statement: those past their absolute expiry
 * (every generation carries it) or with a member revoked before `before`. Never part of a chain: a chain
 * is dead while any member is revoked, and a revocation racing a rotation can leave the newest
 * generation itself unrevoked; deleting only the revoked rows would bring that one back to life.
 */
async function deleteChains(db: Kysely<Database>, before: Date, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const doomed = db
      .selectFrom('refresh_tokens')
      .select('family_id')
      .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]))
      .distinct()
      .limit(batch);
    const result = await db.deleteFrom('refresh_tokens').where('family_id', 'in', doomed).executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted === 0) return total;
  }
}

/** Deletes matching rows `batch` at a time (by ctid, which Postgres 14+ and PGlite both have). */
async function deleteInBatches(
  db: Kysely<Database>,
  table:
    | 'authorization_requests'
    | 'authorization_codes'
    | 'sessions'
    | 'grant_revocations'
    | 'pushed_authorization_requests'
    | 'client_assertion_jtis'
    | 'dpop_proofs',
  condition: (eb: ExpressionBuilder<Database, typeof table>) => Expression<SqlBool>,
  batch: number,
): Promise<number> {
  const anyDb = db as unknown as SchemalessDb;
  let total = 0;
  for (;;) {
    const doomed = anyDb
      .selectFrom(table)
      .select(sql`ctid`.as('ctid'))
      .where(condition)
      .limit(batch);
    const result = await anyDb
      .deleteFrom(table)
      .where(sql<boolean>`ctid = any(array(${doomed}))`)
      .executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < batch) return total;
  }
}

/**
 * One sweep, by at most one replica at a time: it runs under a session advisory lock named after the
 * schema, and a replica that finds the lock taken skips this round (null) rather than queueing behind it.
 */
export async function sweepOnce(
  database: DatabaseHandle,
  schema: string,
  options: SweepOptions,
): Promise<SweepResult | null> {
  const key = `gatehouse.janitor.${schema}`;
  return database.root.connection().execute(async (conn) => {
    const locked = await sql<{ locked: boolean }>`select pg_try_advisory_lock(hashtext(${key})) as locked`.execute(
      conn,
    );
    if (!locked.rows[0]?.locked) return null;
    try {
      return await sweepExpired(conn.withSchema(schema) as Kysely<Database>, options);
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
    }
  });
}
