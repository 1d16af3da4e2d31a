import type { Db } from '../../db/database.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import type { ClientUseRecorder } from '../../oauth/client-authentication.js';
import { touchClientLastUsed } from '../../repositories/client.repository.js';

/** Tuning and test seams of ClientUsage. */
export interface ClientUsageOptions {
  /** Where failed writes are reported, at debug (the app's pino logger fits). */
  log?: { debug(obj: object, msg: string): void };
  /** Most clients remembered as recently recorded (default 10,000). */
  maxEntries?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** last_used_at is a coarse signal; writing it more often would put a write on every token request. */
const TOUCH_INTERVAL_SECONDS = 3600;

/**
 * Usage recording: a client's last_used_at, written in the background at most once per client per hour
 * from this process, off the request's critical path (client_credentials writes nothing on its way).
 */
export class ClientUsage implements ClientUseRecorder {
  private readonly now: () => number;
  private readonly touched: TtlCache<true>;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly db: Db,
    private readonly options: ClientUsageOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.touched = new TtlCache(options.maxEntries ?? 10_000);
  }

  /** Records that a client was used, after the current request's work; failures are only logged at debug. */
  markUsed(clientId: string): void {
    const now = this.now();
    if (this.touched.get(clientId, now)) return;
    this.touched.set(clientId, true, now + TOUCH_INTERVAL_SECONDS * 1000);
    const write = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => touchClientLastUsed(this.db, clientId, TOUCH_INTERVAL_SECONDS))
      .catch((err: unknown) => this.options.log?.debug({ err, clientId }, 'could not record client last use'))
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }

  /** Waits for background writes to finish; called before the database closes. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
