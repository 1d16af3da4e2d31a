import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { OAuthError } from '../../oauth/errors.js';

/** Whether any string in a parsed query or body holds a NUL character (bounded walk). */
function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 6 || value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) if (key.includes('\u0000') || hasNul(record[key], depth + 1)) return true;
  return false;
}

function nulRefused(): OAuthError {
  return new OAuthError('invalid_request', 'parameters must not contain NUL characters');
}

/**
 * Refuses NUL characters in any parameter before a route sees it: Postgres text cannot hold them, so
 * such a value would otherwise fail deep in a query as a 500. The path and query are checked in the
 * first onRequest hook (registered before every other plugin), so no hook that reads the database (the
 * registration access token check, the admin token, sessions) ever meets one; the body once it is
 * parsed. A malformed percent-encoding in the path never reaches a hook: the router refuses it
 * (frameworkErrors, 400). The route's own error rendering applies (a page for browser endpoints, RFC 6749
 * JSON elsewhere).
 */
export default fp(
  async function inputGuard(app: FastifyInstance) {
    // Callback-style: every request runs these, and an async hook costs a promise and a microtask each.
    app.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
      done(hasNul(request.params) || hasNul(request.query) ? nulRefused() : undefined);
    });
    app.addHook('preValidation', (request: FastifyRequest, _reply, done) => {
      done(hasNul(request.body) ? nulRefused() : undefined);
    });
  },
  { name: 'input-guard' },
);
