import type { Kysely } from 'kysely';
import type { BaseLogger } from 'pino';
import type { Config } from '../../config/index.js';
import type { Database } from '../../db/database.js';
import type { LogoutDeliveryRow } from '../../db/tables/logout.table.js';
import type { Clock } from '../../lib/clock.js';
import { type LogoutPostPolicy, postLogoutToken } from '../../oauth/backchannel-logout-post.js';
import type { Client } from '../../oauth/client.js';
import type { Signer } from '../../oauth/tokens/access-token.js';
import { issueLogoutToken } from '../../oauth/tokens/logout-token.js';
import {
  claimDueLogoutDeliveries,
  deleteLogoutDelivery,
  rescheduleLogoutDelivery,
} from '../../repositories/logout-delivery.repository.js';

/** Deliveries claimed per round; they are POSTed concurrently. */
const BATCH = 20;
/** The longest wait between two attempts at one delivery. */
const MAX_DELAY_SECONDS = 3600;

/** What the outbox worker needs. */
export interface LogoutDeliveryDeps {
  db: Kysely<Database>;
  config: Readonly<Pick<Config, 'issuer' | 'logout'>>;
  /** Read at each attempt (through the registry): a client may have changed its URI or been disabled since. */
  clients: { get(clientId: string): Promise<Client | undefined> };
  signer: () => Signer;
  clock: Clock;
  log: Pick<BaseLogger, 'info' | 'warn' | 'debug'>;
}

/** What one round did. */
export interface DeliveryRound {
  delivered: number;
  retrying: number;
  dropped: number;
}

/**
 * The back-channel logout outbox (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8): each queued
 * (session, client) gets a freshly signed logout token POSTed to the client's backchannel_logout_uri. A
 * failure is retried after BACKCHANNEL_LOGOUT_RETRY_SECONDS, doubling each time (at most an hour), up to
 * BACKCHANNEL_LOGOUT_MAX_ATTEMPTS; then it is given up and logged. The queue is a table, so it survives
 * restarts, and rows are claimed with FOR UPDATE SKIP LOCKED, so each is delivered by one replica.
 */
export class LogoutDeliveries {
  readonly #deps: LogoutDeliveryDeps;
  readonly #policy: LogoutPostPolicy;

  constructor(deps: LogoutDeliveryDeps) {
    this.#deps = deps;
    this.#policy = {
      timeoutMs: deps.config.logout.timeout,
      allowPrivateAddresses: deps.config.logout.allowPrivateAddresses,
    };
  }

  /** Claims and delivers what is due now; rounds repeat while full batches keep coming. */
  async deliverDue(): Promise<DeliveryRound> {
    const total: DeliveryRound = { delivered: 0, retrying: 0, dropped: 0 };
    for (;;) {
      const now = this.#deps.clock();
      // The lease outlasts an attempt, so a row is never claimed twice while it is being POSTed.
      const lease = new Date(now.getTime() + this.#deps.config.logout.timeout * 2 + 10_000);
      const rows = await claimDueLogoutDeliveries(this.#deps.db, now, lease, BATCH);
      const outcomes = await Promise.all(rows.map((row) => this.#deliver(row)));
      for (const outcome of outcomes) total[outcome] += 1;
      if (rows.length < BATCH) return total;
    }
  }

  async #deliver(row: LogoutDeliveryRow): Promise<keyof DeliveryRound> {
    const { db, config, log } = this.#deps;
    const client = await this.#deps.clients.get(row.client_id);
    const uri = client && !client.disabled_at ? client.backchannel_logout_uri : null;
    if (!uri) {
      await deleteLogoutDelivery(db, row.id);
      return 'dropped';
    }
    const now = this.#deps.clock();
    const token = await issueLogoutToken(this.#deps.signer(), {
      issuer: config.issuer,
      clientId: row.client_id,
      sub: row.sub,
      sid: row.sid,
      now: Math.floor(now.getTime() / 1000),
      ttlSeconds: config.logout.tokenTtl,
    });
    const result = await postLogoutToken(uri, token, this.#policy);
    if (result.ok) {
      await deleteLogoutDelivery(db, row.id);
      log.info({ client_id: row.client_id, attempts: row.attempts }, 'back-channel logout delivered');
      return 'delivered';
    }
    if (row.attempts >= config.logout.maxAttempts) {
      await deleteLogoutDelivery(db, row.id);
      log.warn(
        { client_id: row.client_id, attempts: row.attempts, reason: result.reason },
        'back-channel logout given up',
      );
      return 'dropped';
    }
    const delay = Math.min(config.logout.retryDelay * 2 ** (row.attempts - 1), MAX_DELAY_SECONDS);
    await rescheduleLogoutDelivery(db, row.id, new Date(now.getTime() + delay * 1000), result.reason);
    log.info(
      { client_id: row.client_id, attempts: row.attempts, reason: result.reason, retry_in_s: delay },
      'back-channel logout failed; will retry',
    );
    return 'retrying';
  }
}
