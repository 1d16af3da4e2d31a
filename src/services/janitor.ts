import { type Kysely, sql } from 'kysely';
import type { DatabaseHandle } from '../db/connect.js';
import type { Database } from '../db/database.js';

/** Rows deleted per statement, so a large backlog never holds long locks on a hot table. */
export const JANITOR_BATCH = 5000;

/** What one sweep deleted, per table. */
export interface SweepResult {
  authorization_requests: number;
  authorization_codes: number;
  refresh_tokens: number;
  sessions: number;
}

export interface SweepOptions {
  /** Seconds a row is kept after it stopped being usable (expired, or revoked), for investigation. */
  retentionSeconds: number;
  /** A session's idle lifetime: one unused for longer is over even before its absolute expiry. */
  sessionIdleSeconds: number;
  now?: Date;
  batch?: number;
}

/**
 * Deletes rows that can no longer be used by anyone, once they are older than the retention period:
 * pending authorization requests and codes past expiry, refresh tokens past their chain's absolute
 * expiry or revoked, sessions past expiry, idle too long, or revoked. Nothing still valid is touched,
 * so a sweep never changes an answer Gatehouse gives: every deleted row would already be refused.
 * (Codes are kept the retention period after expiry so that a replay soon after still finds its row;
 * within its 60 s life a replayed code revokes the chain it started, RFC 9700 §4.5.)
 */
export async function sweepExpired(db: Kysely<Database>, options: SweepOptions): Promise<SweepResult> {
  const now = options.now ?? new Date();
  const before = new Date(now.getTime() - options.retentionSeconds * 1000);
  const idleBefore = new Date(before.getTime() - options.sessionIdleSeconds * 1000);
  const batch = options.batch ?? JANITOR_BATCH;
  return {
    authorization_requests: await deleteInBatches(db, 'authorization_requests', sql`expires_at < ${before}`, batch),
    authorization_codes: await deleteInBatches(db, 'authorization_codes', sql`expires_at < ${before}`, batch),
    refresh_tokens: await deleteInBatches(db, 'refresh_tokens', sql`expires_at < ${before} or revoked_at < ${before}`, batch),
    sessions: await deleteInBatches(
      db,
      'sessions',
      sql`expires_at < ${before} or revoked_at < ${before} or last_seen_at < ${idleBefore}`,
      batch,
    ),
  };
}

/** Deletes matching rows `batch` at a time (by ctid, which Postgres 14+ and PGlite both have). */
async function deleteInBatches(db: Kysely<Database>, table: keyof Database, condition: ReturnType<typeof sql>, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await db
      .deleteFrom(table)
      .where(sql<boolean>`ctid = any(array(${db.selectFrom(table).select(sql`ctid`.as('ctid')).where(sql<boolean>`${condition}`).limit(batch)}))`)
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
export async function sweepOnce(database: DatabaseHandle, schema: string, options: SweepOptions): Promise<SweepResult | null> {
  const key = `gatehouse.janitor.${schema}`;
  return database.root.connection().execute(async (conn) => {
    const locked = await sql<{ locked: boolean }>`select pg_try_advisory_lock(hashtext(${key})) as locked`.execute(conn);
    if (!locked.rows[0]?.locked) return null;
    try {
      return await sweepExpired(conn.withSchema(schema) as Kysely<Database>, options);
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
    }
  });
}
