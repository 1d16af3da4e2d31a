import type { Writable } from 'node:stream';
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config/index.js';

const SENSITIVE_NAME =
  /secret|passw(or)?d|token|assertion|authori[sz]ation|cookie|verifier|login_(request|response)|private|api[-_]?key|credential|request_uri/i;

/** Answers of isSensitiveName for the names seen so far: log objects repeat the same few keys on every line. */
const sensitiveNames = new Map<string, boolean>();
/** Names remembered at most: log objects' keys come from the code, a bounded few. */
const MAX_REMEMBERED_NAMES = 1024;

/** Whether a field or parameter of this name may hold a secret, code, token or assertion (never logged). */
export function isSensitiveName(name: string): boolean {
  // "code" alone or as a suffix (auth_code, device_code), but not statusCode.
  return SENSITIVE_NAME.test(name) || /^code$|[_-]code$/i.test(name);
}

/** isSensitiveName for a log object's key, remembered (query parameter names, chosen by requests, are not). */
function isSensitiveKey(name: string): boolean {
  const known = sensitiveNames.get(name);
  if (known !== undefined) return known;
  const sensitive = isSensitiveName(name);
  if (sensitiveNames.size < MAX_REMEMBERED_NAMES) sensitiveNames.set(name, sensitive);
  return sensitive;
}

/** A URL with the values of sensitive query parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const key of new Set(params.keys())) {
    if (isSensitiveName(key)) {
      params.set(key, '[redacted]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url;
}

/**
 * A log object with the values of sensitive keys replaced: a copy where anything was replaced (at any depth),
 * the object itself where nothing was (most lines: copying them cost a tenth of a line's formatting). The
 * argument is never modified.
 */
export function redactObject(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const items = value as unknown[];
    let copy: unknown[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const redacted = redactObject(item, depth + 1);
      if (redacted !== item) (copy ??= [...items])[i] = redacted;
    }
    return copy ?? value;
  }
  // Class instances (requests, errors) have their own serializers; only plain data is walked.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const v = record[key];
    const redacted = isSensitiveKey(key) && v !== undefined && v !== null ? '[redacted]' : redactObject(v, depth + 1);
    if (redacted !== v) (copy ??= { ...record })[key] = redacted;
  }
  return copy ?? value;
}

interface SerializableRequest {
  id: string;
  method: string;
  url: string;
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Pino options for Gatehouse: JSON lines, request ids, and redaction of anything secret. */
export function loggerOptions(config: Pick<Config, 'log'>): LoggerOptions {
  const options: LoggerOptions = {
    level: config.log.level,
    base: { service: 'gatehouse' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => redactObject(obj) as Record<string, unknown>,
    },
    serializers: {
      req: (req: SerializableRequest) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.ip,
        userAgent: req.headers['user-agent'],
      }),
      err: pino.stdSerializers.err,
    },
    // Defence in depth for code that logs raw headers.
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
      ],
      censor: '[redacted]',
    },
  };
  if (config.log.pretty) {
    options.transport = { target: 'pino-pretty', options: { translateTime: 'SYS:standard', singleLine: true } };
  }
  return options;
}

/** The process logger; `stream` lets tests capture what would be written. */
export function createLogger(config: Pick<Config, 'log'>, stream?: Writable): Logger {
  const options = loggerOptions(config);
  if (stream) {
    delete options.transport;
    return pino(options, stream);
  }
  return pino(options);
}

/** Audit payloads that ride on a request's one log line, by request (set by the route, read when it is sent). */
const requestAudit = new WeakMap<FastifyRequest, Record<string, unknown>>();

/**
 * Puts an audit event's log payload (AuditLog.recordForLine) on the request's log line, under `audit`,
 * so an audited request is still one line (the token endpoint's `token.issued`). Where no request line is
 * written (LOG_REQUESTS=false), the payload is logged on an `audit` line of its own.
 */
export function auditOnRequestLine(request: FastifyRequest, audit: Record<string, unknown>): void {
  requestAudit.set(request, audit);
}

/** Paths an orchestrator or Prometheus polls: their request lines are debug, not info. */
const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per request, written when the response is sent, in place of Fastify's two (incoming,
 * completed). Built from the few fields it needs, the URL's secrets redacted, and skipped before any work
 * when its level is off. With `LOG_REQUESTS=false` only failed responses (an error while sending) are
 * logged; the error handler logs server errors either way.
 */
export class RequestLogController extends LogController {
  readonly #enabled: boolean;

  constructor(config: Pick<Config, 'log'>) {
    super();
    this.#enabled = config.log.requests;
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const audit = requestAudit.get(request);
    if (error) {
      reply.log.error({ err: error, statusCode: reply.statusCode, ...(audit ? { audit } : {}) }, 'request errored');
      return;
    }
    // Fastify's logger is the pino instance createLogger made (its type only lacks isLevelEnabled).
    const log = request.log as unknown as Logger;
    if (!this.#enabled) {
      if (audit) log.info({ audit }, 'audit');
      return;
    }
    const q = request.url.indexOf('?');
    const path = q === -1 ? request.url : request.url.slice(0, q);
    const level = PROBE_PATHS.has(path) ? 'debug' : 'info';
    if (!log.isLevelEnabled(level)) return;
    log[level](
      {
        method: request.method,
        url: redactUrl(request.url),
        statusCode: reply.statusCode,
        responseTime: Math.round(reply.elapsedTime * 10) / 10,
        remoteAddress: request.ip,
        ...(audit ? { audit } : {}),
      },
      'request completed',
    );
  }
}
