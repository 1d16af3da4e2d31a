import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Paths browser-based clients call cross-origin (metadata, JWKS, token, revoke, register, userinfo).
 * Never /authorize, /consent or /sign-in: those are top-level navigations, and CORS there would only
 * widen what a hostile page can read.
 */
const CORS_PATHS = /^\/(\.well-known\/|token$|revoke$|introspect$|register(\/|$)|userinfo$)/;

/** CORS open (any origin, no credentials) on the endpoints meant for browsers' fetch, with preflight. */
export default fp(
  async function corsPlugin(app: FastifyInstance) {
    await app.register(cors, {
      delegator: (req, callback) => {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        if (!CORS_PATHS.test(path)) return callback(null, { origin: false });
        callback(null, {
          origin: '*',
          methods: ['GET', 'POST', 'PUT', 'DELETE'],
          allowedHeaders: ['Authorization', 'Content-Type', 'DPoP', 'MCP-Protocol-Version'],
          exposedHeaders: ['WWW-Authenticate', 'X-Request-Id'],
          credentials: false,
          maxAge: 600,
        });
      },
    });
  },
  { name: 'cors' },
);
