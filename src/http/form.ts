import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { OAuthError } from '../oauth/errors.js';

export const FORM = 'application/x-www-form-urlencoded';
export const JSON_MEDIA = 'application/json';

/** The media type of a request body (lower case, parameters dropped), or undefined when none is given. */
export function mediaType(request: FastifyRequest): string | undefined {
  return request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/**
 * The one body media-type check: anything but `expected` (or no type at all) is 415 with the RFC 6749
 * §5.2 code `invalid_request`, the only code every OAuth client understands. Token (RFC 6749 §3.2),
 * revocation (RFC 7009 §2.1), introspection (RFC 7662 §2.1), the handshake and consent forms take
 * `application/x-www-form-urlencoded`; registration (RFC 7591 §3.1) takes `application/json`.
 */
export function requireMediaType(request: FastifyRequest, expected: string): void {
  if (mediaType(request) === expected) return;
  throw new OAuthError('invalid_request', `the request body must be ${expected}`, { status: 415 });
}

/** requireMediaType for a form body. */
export function requireForm(request: FastifyRequest): void {
  requireMediaType(request, FORM);
}

/**
 * RFC 6749 §3.2: no parameter more than once, except those listed (always arrays afterwards);
 * §3.1: an empty parameter counts as omitted.
 */
export function normaliseParams(request: FastifyRequest, repeatable: ReadonlySet<string>): void {
  const raw = (request.body ?? {}) as Record<string, string | string[]>;
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (repeatable.has(name)) {
      const values = (Array.isArray(value) ? value : [value]).filter((v) => v !== '');
      if (values.length > 0) out[name] = values;
      continue;
    }
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.2)`);
    if (value !== '') out[name] = value;
  }
  for (const name of repeatable) out[name] ??= [];
  request.body = out;
}

/** A route's preValidation hook. */
type PreValidation = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/**
 * A preValidation hook that requires a form body and normalises its parameters (normaliseParams), in
 * callback style: the token endpoints run it on every request, and an async hook costs a promise and a
 * microtask. A refusal is passed on as the hook's error, which the route's error handling renders.
 */
export function formParams(repeatable: ReadonlySet<string> = new Set()): PreValidation {
  return (request, _reply, done) => {
    try {
      requireForm(request);
      normaliseParams(request, repeatable);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  };
}
