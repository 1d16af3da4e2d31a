import type { ClientAuthenticationFailures } from '../../oauth/client-authentication.js';
import type { Db } from '../../db/database.js';
import type { NewAuditEventRow } from '../../db/tables/audit-event.table.js';
import type { Clock } from '../../lib/clock.js';
import { insertAuditEvents } from '../../repositories/audit-event.repository.js';

/** Who acted: the signed-in user, a client, an operator (admin API or CLI), or Gatehouse itself. */
export type AuditActor = 'user' | 'client' | 'admin' | 'system';

/**
 * One audit event as a service reports it (docs/audit.md has the catalogue). `details` holds non-secret
 * facts only (scopes, grant type, resources, a DPoP key thumbprint, a key id): never a secret, code,
 * token, cookie, assertion or ID token.
 */
export interface AuditEvent {
  /** Dotted type, e.g. `consent.granted`. */
  type: string;
  actor: AuditActor;
  /** The user's `sub`, when the event concerns a user. */
  subject?: string | null | undefined;
  clientId?: string | null | undefined;
  /** The requester's IP address, when the event comes from a request. */
  address?: string | null | undefined;
  details?: Record<string, unknown>;
}

/** Where services report audit events. `record` never throws and never waits: it must not fail or slow a request. */
export interface AuditSink {
  record(event: AuditEvent): void;
  /**
   * Optional: keeps the event like `record` but hands back its log payload for the caller's own log
   * line instead of writing a line (AuditLog.recordForLine); undefined when the event is not kept.
   */
  recordForLine?(event: AuditEvent): Record<string, unknown> | undefined;
}

/** Who makes a change (clients, keys, grants), for the audit trail. */
export interface ChangedBy {
  actor: AuditActor;
  /** The requester's IP address, when the change comes from a request. */
  address?: string;
  /** Through what: `admin_api`, `cli`, `registration`, `clients_file`. */
  via?: string;
}

/** The event fields a ChangedBy fills: actor, address, and `via` added to the details. */
export function changedBy(
  by: ChangedBy,
  details: Record<string, unknown>,
): Pick<AuditEvent, 'actor' | 'address' | 'details'> {
  return {
    actor: by.actor,
    address: by.address ?? null,
    details: by.via === undefined ? details : { ...details, via: by.via },
  };
}

/** A sink that keeps nothing (units built without an audit log, such as some tests' own wiring). */
export const noAudit: AuditSink = { record() {} };

/** A sink that stamps every event with the address of the request it comes from. */
export function atAddress(sink: AuditSink, address: string | null | undefined): AuditSink {
  if (address === undefined || address === null) return sink;
  const stamped = (event: AuditEvent): AuditEvent => ({ ...event, address: event.address ?? address });
  const forLine = sink.recordForLine?.bind(sink);
  return {
    record: (event) => sink.record(stamped(event)),
    ...(forLine ? { recordForLine: (event: AuditEvent) => forLine(stamped(event)) } : {}),
  };
}

/** The pino-compatible logger audit log lines go to (at info, message "audit"). */
export interface AuditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Counters of the audit log (metrics), all optional. */
export interface AuditObserver {
  /** An event was accepted (logged and buffered). */
  recorded(type: string): void;
  /** Events that will never be stored: a failed write, or a full buffer. */
  lost(count: number, reason: 'write_failed' | 'buffer_full'): void;
}

export interface AuditLogOptions {
  db: () => Db;
  clock: Clock;
  /** Where each event is also logged; none (the CLI) stores rows only. */
  logger?: AuditLogger | undefined;
  observer?: AuditObserver | undefined;
  /** AUDIT_TOKEN_EVENTS: whether `token.issued` events are kept (the high-volume type). */
  tokenEvents?: boolean;
  /** How long an event may wait in the buffer before it is written (default 100 ms). */
  flushIntervalMs?: number;
  /** Rows per INSERT; a buffer this full is written at once (default 500). */
  batchSize?: number;
  /** Most events held in memory; beyond it new events are logged but not stored, and counted (default 10,000). */
  maxBuffered?: number;
}

const DEFAULT_FLUSH_MS = 100;
const DEFAULT_BATCH = 500;
const DEFAULT_MAX_BUFFERED = 10_000;

/**
 * The audit event stream: each event is logged at once (one `audit` line) and buffered for the
 * `audit_events` table, written as multi-row INSERTs every `flushIntervalMs` or `batchSize` events, and
 * on close. Nothing is awaited on a request's path, so an audited request costs no extra round trip;
 * a crash loses at most the buffer (the log lines are already out), and a failed write (the database
 * down) is counted and warned about, never thrown (docs/audit.md, "Cost").
 */
export class AuditLog implements AuditSink {
  readonly #options: AuditLogOptions;
  readonly #batch: number;
  readonly #max: number;
  readonly #tokenEvents: boolean;
  #buffer: NewAuditEventRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(options: AuditLogOptions) {
    this.#options = options;
    this.#batch = options.batchSize ?? DEFAULT_BATCH;
    this.#max = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.#tokenEvents = options.tokenEvents ?? true;
  }

  /** Events waiting to be written. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Logs the event and queues its row; never throws. */
  record(event: AuditEvent): void {
    this.#accept(event, true);
  }

  /**
   * Queues the event's row and returns its log payload (the `audit` field) instead of logging it, for a
   * caller that writes it on a line of its own making: the token endpoint's request line, so a token
   * request stays one log line. Undefined when the event is not kept (AUDIT_TOKEN_EVENTS=false).
   */
  recordForLine(event: AuditEvent): Record<string, unknown> | undefined {
    return this.#accept(event, false);
  }

  #accept(event: AuditEvent, log: boolean): Record<string, unknown> | undefined {
    try {
      if (event.type === 'token.issued' && !this.#tokenEvents) return undefined;
      const occurredAt = this.#options.clock();
      const details = event.details ?? {};
      const row = {
        occurred_at: occurredAt,
        type: event.type,
        subject: event.subject ?? null,
        client_id: event.clientId ?? null,
        actor: event.actor,
        address: event.address ?? null,
        details: JSON.stringify(details),
      };
      const line = { ...row, occurred_at: occurredAt.toISOString(), details };
      if (log) this.#options.logger?.info({ audit: line }, 'audit');
      this.#options.observer?.recorded(event.type);
      if (this.#buffer.length >= this.#max) {
        this.#options.observer?.lost(1, 'buffer_full');
        return line;
      }
      this.#buffer.push(row);
      if (this.#buffer.length >= this.#batch) void this.flush();
      else this.#schedule();
      return line;
    } catch {
      // An audit event must never fail the request that caused it (a detail that cannot be serialised).
      this.#options.observer?.lost(1, 'write_failed');
      return undefined;
    }
  }

  /** Writes every buffered event now (after any write in progress); resolves once done, never rejects. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#writing = this.#writing.then(() => this.#drain());
    return this.#writing;
  }

  /** Flushes what is buffered (before the database closes). Events recorded later are written by a later flush. */
  close(): Promise<void> {
    return this.flush();
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#options.flushIntervalMs ?? DEFAULT_FLUSH_MS);
    this.#timer.unref();
  }

  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const rows = this.#buffer.splice(0, this.#batch);
      try {
        await insertAuditEvents(this.#options.db(), rows);
      } catch (err) {
        // Not retried: a database that is down would hold the buffer full and retry every interval; the
        // events are in the log already. Only the count and the reason go to the log, never a row.
        this.#options.observer?.lost(rows.length, 'write_failed');
        this.#options.logger?.warn(
          { err: { message: err instanceof Error ? err.message : String(err) }, events: rows.length },
          'could not store audit events; they are in the log only',
        );
      }
    }
  }
}

/**
 * The audit trail's view of failed client authentications at one endpoint, from one address: a
 * `client.authentication_failed` event with the method and reason class, never what was presented.
 */
export function clientAuthenticationFailures(
  sink: AuditSink,
  address: string,
  endpoint: string,
): ClientAuthenticationFailures {
  return {
    failed: (clientId, method, reason) =>
      sink.record({
        type: 'client.authentication_failed',
        actor: 'client',
        // The id as presented: it may name no client at all, so it is bounded like any logged input.
        clientId: clientId.slice(0, 255),
        address,
        details: { endpoint, method, reason },
      }),
  };
}

/** A sink that marks every event as coming through `via` (the CLI), unless the event names its own. */
export function through(sink: AuditSink, via: string): AuditSink {
  return { record: (event) => sink.record({ ...event, details: { via, ...event.details } }) };
}
