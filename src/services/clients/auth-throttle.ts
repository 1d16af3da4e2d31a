import { createHash } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import type { ClientAuthenticationGuard } from '../../oauth/client-authentication.js';
import { OAuthError } from '../../oauth/errors.js';

/** The limits of CLIENT_AUTH_* (config `clientAuthThrottle`). */
export interface ClientAuthThrottleSettings {
  /** Seconds a window lasts, from the first failure it counts. */
  window: number;
  /** Failures of one client_id from one address; 0 turns the throttle off. */
  maxPerClientAddress: number;
  /** Failures from one address, any client_id; 0 turns this limit off. */
  maxPerAddress: number;
  /** Failures of one client_id from all addresses; 0 turns this limit off. */
  maxPerClient: number;
}

/** Which limit refused a request (a metrics label). */
export type ThrottleLimit = 'client_address' | 'address' | 'client';

/** What the throttle reports, for metrics. */
export interface ClientAuthThrottleObserver {
  failed(endpoint: string): void;
  refused(endpoint: string, limit: ThrottleLimit): void;
}

/**
 * Entries each counter keeps at most. Keys come from requests (client ids, addresses), so the maps are
 * bounded: when full the oldest entry goes, which can only loosen a limit, never lock anyone out. Filling
 * a map takes failures, and failures from one address stop at its own limit.
 */
export const MAX_ENTRIES = 10_000;

/**
 * How long a successful authentication exempts its (client, address) pair from the per-address and
 * per-client limits: a day covers clients that authenticate only now and then (a nightly job).
 */
const KNOWN_GOOD_MS = 24 * 60 * 60 * 1000;

interface Window {
  count: number;
  until: number;
}

/**
 * The key an address is counted under: an IPv4 address (IPv4-mapped IPv6 included) as it is, an IPv6
 * address by its /64, because one host or customer is routinely given a whole /64 and could otherwise
 * count each of its 2^64 addresses separately.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? front
      : [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16).toString(16) : g))
    .join(':')}::/64`;
}

/** A client id as a bounded-length key: ids may be 512 characters (or URLs), so long ones are hashed. */
function clientKey(clientId: string): string {
  return clientId.length <= 64 ? clientId : `#${createHash('sha256').update(clientId).digest('base64url')}`;
}

/**
 * RFC 6749 §2.3.1 (and RFC 9700 §2.5): the endpoints that authenticate clients with a password must be
 * protected against brute force. Failed authentications are counted in fixed windows that open with the
 * first failure, per (client_id, address), per address and per client_id; a request over a limit is
 * refused before its secret is checked, so a guesser learns nothing more. Refusals do not count, so a
 * window always ends on time.
 *
 * An attacker must not be able to lock a legitimate client out by spraying its client_id: the per-client
 * and per-address limits never apply to a (client, address) pair that authenticated successfully within
 * the last day. Only the pair's own counter applies to it, and only failures from that same address (a
 * shared NAT) move that counter. A client's first request from a new address during a distributed attack
 * on its id waits for the window; that is the price of a per-client ceiling at all.
 *
 * Per process and in memory (bounded, see MAX_ENTRIES): N replicas without sticky routing allow N times
 * the failures.
 */
export class ClientAuthThrottle {
  private readonly pairs = new TtlCache<Window>(MAX_ENTRIES);
  private readonly addresses = new TtlCache<Window>(MAX_ENTRIES);
  private readonly clients = new TtlCache<Window>(MAX_ENTRIES);
  private readonly knownGood = new TtlCache<true>(MAX_ENTRIES);

  constructor(
    private readonly settings: ClientAuthThrottleSettings,
    private readonly clock: Clock,
    private readonly observer?: ClientAuthThrottleObserver,
  ) {}

  /** Whether the throttle is on (CLIENT_AUTH_MAX_FAILURES > 0). */
  get enabled(): boolean {
    return this.settings.maxPerClientAddress > 0;
  }

  /** Entries held across all counters (at most 4 × MAX_ENTRIES). */
  get size(): number {
    return this.pairs.size + this.addresses.size + this.clients.size + this.knownGood.size;
  }

  /** The guard one request's client authentication goes through, from `ip` (request.ip) at `endpoint`. */
  guard(ip: string, endpoint: string): ClientAuthenticationGuard | undefined {
    if (!this.enabled) return undefined;
    const address = addressKey(ip);
    return {
      admit: (clientId) => this.admit(address, clientKey(clientId), endpoint),
      failed: (clientId) => this.failed(address, clientKey(clientId), endpoint),
      succeeded: (clientId) => this.succeeded(address, clientKey(clientId)),
    };
  }

  private admit(address: string, client: string, endpoint: string): void {
    const now = this.clock().getTime();
    const pair = `${client}\n${address}`;
    const { maxPerClientAddress, maxPerAddress, maxPerClient } = this.settings;
    let refusal = over(this.pairs.get(pair, now), maxPerClientAddress, 'client_address');
    if (!refusal && this.knownGood.get(pair, now) === undefined) {
      refusal =
        over(this.addresses.get(address, now), maxPerAddress, 'address') ??
        over(this.clients.get(client, now), maxPerClient, 'client');
    }
    if (!refusal) return;
    this.observer?.refused(endpoint, refusal.limit);
    const seconds = Math.max(1, Math.ceil((refusal.until - now) / 1000));
    // RFC 6585 §4: 429 Too Many Requests, with Retry-After. The error code: RFC 6749 §5.2's token-endpoint
    // codes all blame the request, and `invalid_client` would tell a guesser that the secret was checked.
    // `temporarily_unavailable` (§4.1.2.1) is the registered OAuth code for "try again later", which
    // client libraries already treat as retryable (and Gatehouse sends with its 503s); RFC 8628's
    // `slow_down` is a device-flow polling instruction (add 5 s to the interval) and means nothing here.
    throw new OAuthError('temporarily_unavailable', `too many failed client authentications; retry in ${seconds} s`, {
      status: 429,
      headers: { 'retry-after': String(seconds) },
      detail: `client authentication throttled by the ${refusal.limit} limit`,
    });
  }

  private failed(address: string, client: string, endpoint: string): void {
    const now = this.clock().getTime();
    const windowMs = this.settings.window * 1000;
    bump(this.pairs, `${client}\n${address}`, now, windowMs);
    bump(this.addresses, address, now, windowMs);
    bump(this.clients, client, now, windowMs);
    this.observer?.failed(endpoint);
  }

  private succeeded(address: string, client: string): void {
    const now = this.clock().getTime();
    const pair = `${client}\n${address}`;
    this.pairs.delete(pair);
    this.knownGood.set(pair, true, now + KNOWN_GOOD_MS);
  }
}

/** The refusal a window calls for when it has reached `max` (0: the limit is off). */
function over(
  window: Window | undefined,
  max: number,
  limit: ThrottleLimit,
): { limit: ThrottleLimit; until: number } | undefined {
  return max > 0 && window !== undefined && window.count >= max ? { limit, until: window.until } : undefined;
}

/** Counts one failure in the window for `key`, opening one at `now` when none is open. */
function bump(cache: TtlCache<Window>, key: string, now: number, windowMs: number): void {
  const open = cache.get(key, now);
  const window = open ? { count: open.count + 1, until: open.until } : { count: 1, until: now + windowMs };
  cache.set(key, window, window.until);
}
