import type { FastifyRequest } from 'fastify';
import { OAuthError } from '../../oauth/errors.js';

const FORM = 'application/x-www-form-urlencoded';

/** RFC 6749 §3.2 (token), RFC 7009 §2.1 (revoke): the body is application/x-www-form-urlencoded only. */
export function requireForm(request: FastifyRequest): void {
  const type = request.headers['content-type'];
  const media = type?.split(';')[0]?.trim().toLowerCase();
  if (media === FORM) return;
  if (!type) throw new OAuthError('invalid_request', `the request body must be ${FORM}`);
  throw new OAuthError('invalid_request', `the request body must be ${FORM}`, { status: 415 });
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
