import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Paths browser-based clients call cross-origin (metadata, JWKS, token, revoke, register, userinfo, and
 * par: a browser-based public client pushes its request as it calls /token, RFC 9126 §2).
 * Never /authorize, /consent or /sign-in: those are top-level navigations, and CORS there would only
 * widen what a hostile page can read. Not /introspect either: only confidential clients (servers
 * holding a secret) may call it, and a browser holds no secret.
 */
const CORS_PATHS = /^\/(\.well-known\/|token$|revoke$|register(\/|$)|userinfo$|par$)/;

export interface CorsPluginOptions {
  /** Whether /register exists (DCR_ENABLED), so its preflight is answered only then. */
  registration: boolean;
}

/**
 * CORS open (any origin, no credentials) on the endpoints meant for browsers' fetch, with preflight.
 * The options are static, normalised once by @fastify/cors; every other route opts out through its
 * route config (`cors: false`, set as routes are added). A per-request delegator re-normalised the
 * options on every request, a cost the token endpoint's profile showed.
 */
export default fp<CorsPluginOptions>(
  async function corsPlugin(app: FastifyInstance, { registration }) {
    // Before @fastify/cors adds its catch-all OPTIONS route, so that route opts out too: preflights are
    // answered only by the OPTIONS routes below, never for /authorize or an unknown path.
    app.addHook('onRoute', (route) => {
      // @fastify/cors reads `config.cors` (false: no CORS on this route); its types do not declare it.
      if (!CORS_PATHS.test(route.url)) route.config = { ...route.config, cors: false } as typeof route.config;
    });
    await app.register(cors, {
      origin: '*',
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'DPoP', 'MCP-Protocol-Version'],
      exposedHeaders: ['WWW-Authenticate', 'X-Request-Id', 'DPoP-Nonce'],
      credentials: false,
      maxAge: 600,
    });
    // @fastify/cors answers a preflight in its onRequest hook; these routes only make the paths exist
    // for OPTIONS. A request that is not a preflight (no Origin or method) is answered 400 by the hook.
    const preflightPaths = [
      '/.well-known/*',
      '/token',
      '/revoke',
      '/userinfo',
      '/par',
      ...(registration ? ['/register', '/register/:client_id'] : []),
    ];
    for (const url of preflightPaths) app.options(url, async (_request, reply) => reply.callNotFound());
  },
  { name: 'cors' },
);
