import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { OAuthError } from '../../oauth/errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Route config that puts a route under the per-address limit (empty when the limit is off): spread it into `config`. */
    rateLimited: { rateLimit?: { max: number; timeWindow: number } };
  }
}

/**
 * Per-address limits on the unauthenticated browser endpoints (RFC 9700 §4.7; every /authorize
 * writes a row). Off unless a route opts in with `app.rateLimited`; /token stays unlimited here
 * because every request there authenticates a client first.
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance) {
    const { config } = app;
    const max = config.server.rateLimit;
    if (max === 0) {
      app.decorate('rateLimited', {});
      return;
    }
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_request, context) =>
        new OAuthError('too_many_requests', `too many requests; retry in ${Math.ceil(context.ttl / 1000)} s`, {
          status: 429,
          headers: { 'retry-after': String(Math.ceil(context.ttl / 1000)) },
        }),
    });
    app.decorate('rateLimited', { rateLimit: { max, timeWindow: 60_000 } });
  },
  { name: 'rate-limit' },
);
