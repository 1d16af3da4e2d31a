import { setTimeout as sleep } from 'node:timers/promises';
import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import type { Config } from '../config/index.js';
import type { DatabaseHandle } from '../db/connect.js';
import type { Database, SchemalessDb } from '../db/database.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { deleteAuditEventsBefore } from '../repositories/audit-event.repository.js';
import { TAGGED_CHAIN_PREFIX } from '../oauth/tokens/refresh-chain.js';
import { chainHasNoRevokedMember } from '../repositories/refresh-token.repository.js';

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
  /**
   * Seconds a rotated generation of a live chain is kept after its successor was used (or, while its
   * successor is unused, after its own rotation): long enough for a retry within REFRESH_TOKEN_GRACE_SECONDS
   * and for a request still in flight to be told it was overtaken (see rotatedKeepSeconds). The retention
   * period when not given.
   */
  rotatedKeepSeconds?: number;
  /** Heap pages one statement of the page-range sweeps covers. */
  chunkPages?: number;
  /**
   * JANITOR_DUTY_PERCENT: the share (1–100) of the sweep's wall time its statements may take; before each
   * statement the sweep rests for the previous one until it is back to this share (see Pacer). 100, the
   * default here, never rests.
   */
  dutyPercent?: number;
  /** Stops the sweep between two statements (a server shutting down): it then rejects with SweepStopped. */
  signal?: AbortSignal;
}

/** A sweep stopped by its signal between two statements; what it deleted so far stays deleted. */
export class SweepStopped extends Error {
  override name = 'SweepStopped';
}

/**
 * Keeps a sweep's delete statements to a share of its wall time. A backlog sweep is one connection running
 * statement after statement: unpaced it keeps one Postgres backend (a core) busy until it is done, and on a
 * machine whose cores serve token requests that share is taken from them. Before each statement the pacer
 * rests for (100 / dutyPercent - 1) times what the previous one took, so the statements hold the database
 * at most dutyPercent of the time, whatever the machine; the sweep takes about 100 / dutyPercent times as
 * long. No rest follows the last statement: the sweep (and its lock and connection) ends with it.
 */
export class Pacer {
  readonly #restFactor: number;
  readonly #signal: AbortSignal | undefined;

  constructor(dutyPercent: number, signal: AbortSignal | undefined) {
    if (!Number.isFinite(dutyPercent) || dutyPercent <= 0 || dutyPercent > 100)
      throw new RangeError(`dutyPercent must be within (0, 100]: ${dutyPercent}`);
    this.#restFactor = 100 / dutyPercent - 1;
    this.#signal = signal;
  }

  /** Milliseconds of rest owed for the previous statement, taken before the next one (never after the last). */
  #owed = 0;

  /** Rests for the previous statement as long as the duty cycle asks, then runs this one. */
  async step<T>(statement: () => Promise<T>): Promise<T> {
    // An abort rejects the rest (AbortError); either way the sweep ends here, before another statement.
    if (this.#owed >= 1) await sleep(this.#owed, undefined, { signal: this.#signal }).catch(() => undefined);
    if (this.#signal?.aborted) throw new SweepStopped('the sweep was stopped');
    const started = performance.now();
    const result = await statement();
    this.#owed = (performance.now() - started) * this.#restFactor;
    return result;
  }
}

/** Heap pages one DELETE of a page-range sweep covers: about 10,000 rows of the token tables, a short transaction. */
export const JANITOR_CHUNK_PAGES = 512;

/**
 * How long a rotated refresh-token generation must outlive its successor's use: a retry is possible for
 * `graceSeconds` after a rotation, and a request still in flight must find the rows it reads (its clock was
 * read when it arrived, before it waited for a connection and its statements: at most twice the connection
 * wait plus the query timeout), whichever replica's clock (plus the tolerated skew). With the window off (0)
 * neither a retry nor an overtaken request exists: a rotated generation can go at once.
 */
export function rotatedKeepSeconds(settings: {
  graceSeconds: number;
  clockSkewSeconds: number;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}): number {
  if (settings.graceSeconds === 0) return 0;
  const inFlightMs = 2 * (settings.connectTimeoutMs + settings.queryTimeoutMs);
  return settings.graceSeconds + settings.clockSkewSeconds + Math.ceil(inFlightMs / 1000);
}

/** The sweep's settings from the configuration, as the server's periodic janitor and `gatehouse janitor` use them. */
export function sweepOptions(config: Config, extra: Pick<SweepOptions, 'clock' | 'signal'> = {}): SweepOptions {
  return {
    retentionSeconds: config.janitor.retention,
    sessionIdleSeconds: config.flow.sessionIdleTtl,
    accessTokenLifetimeSeconds: config.tokens.accessTokenTtl + config.tokens.clockSkew,
    auditRetentionSeconds: config.audit.retentionDays * 86_400,
    rotatedKeepSeconds: rotatedKeepSeconds({
      graceSeconds: config.flow.refreshGrace,
      clockSkewSeconds: config.tokens.clockSkew,
      connectTimeoutMs: config.database.connectTimeoutMs,
      queryTimeoutMs: config.database.queryTimeoutMs,
    }),
    dutyPercent: config.janitor.dutyPercent,
    ...extra,
  };
}

/**
 * Deletes rows that can no longer be used by anyone, once they are older than the retention period:
 * pending authorization requests and codes (used or not) past expiry, refresh tokens past their chain's
 * absolute expiry or revoked, and, without waiting for retention, rotated generations no retry or request in
 * flight can present any more (rotatedKeepSeconds), sessions past expiry, idle too long, or revoked, grant revocations older than
 * any access token they could concern, pushed authorization requests past expiry, and client assertion
 * ids once their assertion has expired, and remembered DPoP proofs past their window. Nothing still valid is touched,
 * so a sweep never changes an answer Gatehouse gives: every deleted row would already be refused (a deleted
 * rotated generation still names its chain, so presenting it is still reuse: docs/refresh-tokens.md).
 */
export async function sweepExpired(db: Kysely<Database>, options: SweepOptions): Promise<SweepResult> {
  const now = (options.clock ?? systemClock)();
  const before = new Date(now.getTime() - options.retentionSeconds * 1000);
  const idleBefore = new Date(before.getTime() - options.sessionIdleSeconds * 1000);
  const revocationsBefore = new Date(before.getTime() - options.accessTokenLifetimeSeconds * 1000);
  const batch = options.batch ?? JANITOR_BATCH;
  const chunkPages = options.chunkPages ?? JANITOR_CHUNK_PAGES;
  const pace = new Pacer(options.dutyPercent ?? 100, options.signal);
  return {
    authorization_requests: await deleteInBatches(
      db,
      'authorization_requests',
      (eb) => eb('expires_at', '<', before),
      batch,
      pace,
    ),
    refresh_tokens:
      (await deleteRevokedChains(db, before, batch, pace)) +
      (await deleteByPageRanges(
        db,
        (eb) =>
          eb.or([
            // Every generation carries its chain's absolute expiry, so this takes expired chains whole.
            eb('expires_at', '<', before),
            prunableGeneration(
              eb,
              new Date(now.getTime() - (options.rotatedKeepSeconds ?? options.retentionSeconds) * 1000),
            ),
          ]),
        chunkPages,
        pace,
      )),
    // RFC 9700 §4.5, OAuth 2.1 §4.1.3: replaying a redeemed code must revoke the tokens it started. That is
    // decided on the code's row, which is needed only while the code could be presented and accepted: after
    // its expiry a replay is refused as expired anyway. So codes, used or not, go at expiry (plus retention).
    authorization_codes: await deleteExpiredCodes(db, before, batch, pace),
    sessions: await deleteInBatches(
      db,
      'sessions',
      (eb) =>
        eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before), eb('last_seen_at', '<', idleBefore)]),
      batch,
      pace,
    ),
    grant_revocations: await deleteInBatches(
      db,
      'grant_revocations',
      (eb) => eb('revoked_at', '<', revocationsBefore),
      batch,
      pace,
    ),
    // A remembered DPoP proof matters only while its iat is inside the window (RFC 9449 §11.1); no retention.
    dpop_proofs: await deleteInBatches(db, 'dpop_proofs', (eb) => eb('expires_at', '<', now), batch, pace),
    // RFC 9126 request_uris past their short lifetime, used or not.
    pushed_authorization_requests: await deleteInBatches(
      db,
      'pushed_authorization_requests',
      (eb) => eb('expires_at', '<', before),
      batch,
      pace,
    ),
    // A client assertion's jti matters only until the assertion expires (its exp refuses it after that),
    // so these go at expiry: nothing in them is worth keeping for an investigation.
    client_assertion_jtis: await deleteInBatches(
      db,
      'client_assertion_jtis',
      (eb) => eb('expires_at', '<', now),
      batch,
      pace,
    ),
    // The audit trail has its own retention (AUDIT_RETENTION_DAYS), far longer than the rows above.
    audit_events: options.auditRetentionSeconds
      ? await deleteAuditEventsBefore(
          db,
          new Date(now.getTime() - options.auditRetentionSeconds * 1000),
          batch,
          (statement) => pace.step(statement),
        )
      : 0,
  };
}

/**
 * Deletes whole refresh-token chains with a member revoked before `before`, `batch` chains per statement,
 * found through the partial index on revoked members. Never part of a chain: a chain is dead while any
 * member is revoked, and a revocation racing a rotation can leave the newest generation itself unrevoked;
 * deleting only the revoked rows would bring that one back to life. (Expired chains go whole in the page
 * sweep: every generation carries the chain's expiry.)
 */
async function deleteRevokedChains(db: Kysely<Database>, before: Date, batch: number, pace: Pacer): Promise<number> {
  let total = 0;
  for (;;) {
    const doomed = db
      .selectFrom('refresh_tokens')
      .select('family_id')
      .where('revoked_at', 'is not', null)
      .where('revoked_at', '<', before)
      .distinct()
      .limit(batch);
    const result = await pace.step(() =>
      db.deleteFrom('refresh_tokens').where('family_id', 'in', doomed).executeTakeFirst(),
    );
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted === 0) return total;
  }
}

/**
 * A rotated generation nothing can need any more (docs/refresh-tokens.md): its chain's tokens carry a tag
 * (oauth/tokens/refresh-chain.ts), so presenting it after deletion is still recognised as reuse; no retry can
 * present it (rotated before `cutoff`, past the grace window) and no request in flight can have been
 * overtaken by its successor's use (the successor is unused, or was used before `cutoff`, or is gone itself).
 * Rows of a chain with a revoked member stay until the chain goes whole (deleteRevokedChains).
 */
function prunableGeneration(eb: ExpressionBuilder<Database, 'refresh_tokens'>, cutoff: Date): Expression<SqlBool> {
  return eb.and([
    eb('rotated_at', '<', cutoff),
    eb('revoked_at', 'is', null),
    eb('family_id', 'like', `${TAGGED_CHAIN_PREFIX}%`),
    eb.not(
      eb.exists(
        eb
          .selectFrom('refresh_tokens as successor')
          .select(sql.lit(1).as('one'))
          .whereRef('successor.family_id', '=', 'refresh_tokens.family_id')
          .where('successor.generation', '=', sql<number>`${sql.ref('refresh_tokens.generation')} + 1`)
          .where('successor.rotated_at', '>=', cutoff),
      ),
    ),
    chainHasNoRevokedMember(eb),
  ]);
}

/**
 * Deletes matching refresh tokens by ranges of heap pages (a TID range scan, Postgres 14+), `chunkPages`
 * pages per statement, in one pass over the table as it was when the sweep began. Rotated generations have
 * no index to find them by (an index on `rotated_at` would cost every rotation a non-HOT update), so one pass
 * reads the table once, in slices: each statement reads a bounded slice whatever the backlog and holds only
 * the locks of the rows it deletes, briefly, and no statement rereads what an earlier one deleted. Rows
 * added during the pass are the next sweep's.
 */
async function deleteByPageRanges(
  db: Kysely<Database>,
  condition: (eb: ExpressionBuilder<Database, 'refresh_tokens'>) => Expression<SqlBool>,
  chunkPages: number,
  pace: Pacer,
): Promise<number> {
  // The table's size in pages, through any row's tableoid (so the schema the handle is bound to applies).
  const size = await db
    .selectFrom('refresh_tokens')
    .select(sql<string>`(pg_relation_size(tableoid) / current_setting('block_size')::int)::text`.as('pages'))
    .limit(1)
    .executeTakeFirst();
  const pages = Number(size?.pages ?? 0);
  let total = 0;
  for (let first = 0; first < pages; first += chunkPages) {
    const result = await pace.step(() =>
      db
        .deleteFrom('refresh_tokens')
        .where(sql<boolean>`ctid >= ${`(${first},0)`}::tid and ctid < ${`(${first + chunkPages},0)`}::tid`)
        .where(condition)
        .executeTakeFirst(),
    );
    total += Number(result.numDeletedRows);
  }
  return total;
}

/**
 * Deletes codes past `before`, `batch` per statement, walking the expires_at index forward from where the
 * previous statement stopped (keyset): a statement never rescans the index entries earlier ones deleted
 * (they stay in the index until vacuum), so a backlog of any size costs one pass.
 */
async function deleteExpiredCodes(db: Kysely<Database>, before: Date, batch: number, pace: Pacer): Promise<number> {
  let total = 0;
  let from = new Date(0);
  for (;;) {
    const done = await pace.step(() =>
      db
        .with('doomed', (qb) =>
          qb
            .deleteFrom('authorization_codes')
            .where(
              sql<boolean>`ctid = any(array(${qb
                .selectFrom('authorization_codes')
                .select(sql`ctid`.as('ctid'))
                .where('expires_at', '>=', from)
                .where('expires_at', '<', before)
                .orderBy('expires_at')
                .limit(batch)}))`,
            )
            .returning('expires_at'),
        )
        .selectFrom('doomed')
        .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.max('expires_at').as('last')])
        .executeTakeFirstOrThrow(),
    );
    const deleted = Number(done.n);
    total += deleted;
    if (deleted < batch || done.last === null) return total;
    from = done.last;
  }
}

/** Deletes matching rows `batch` at a time (by ctid, which Postgres 14+ and PGlite both have). */
async function deleteInBatches(
  db: Kysely<Database>,
  table:
    | 'authorization_requests'
    | 'sessions'
    | 'grant_revocations'
    | 'pushed_authorization_requests'
    | 'client_assertion_jtis'
    | 'dpop_proofs',
  condition: (eb: ExpressionBuilder<Database, typeof table>) => Expression<SqlBool>,
  batch: number,
  pace: Pacer,
): Promise<number> {
  const anyDb = db as unknown as SchemalessDb;
  let total = 0;
  for (;;) {
    const doomed = anyDb
      .selectFrom(table)
      .select(sql`ctid`.as('ctid'))
      .where(condition)
      .limit(batch);
    const result = await pace.step(() =>
      anyDb
        .deleteFrom(table)
        .where(sql<boolean>`ctid = any(array(${doomed}))`)
        .executeTakeFirst(),
    );
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < batch) return total;
  }
}

/**
 * One sweep, by at most one replica at a time: on Postgres it runs under a session advisory lock named
 * after the schema, and a replica that finds the lock taken skips this round (null) rather than queueing
 * behind it.
 */
export async function sweepOnce(
  database: DatabaseHandle,
  schema: string,
  options: SweepOptions,
): Promise<SweepResult | null> {
  // The embedded database belongs to this one process (its data directory is locked), so no other sweeper
  // can exist, and it has one connection: holding it for the whole sweep would stall every request for as
  // long, rests included. Its statements take turns with requests instead.
  if (database.kind === 'pglite') return sweepExpired(database.root.withSchema(schema) as Kysely<Database>, options);
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
