import type { FastifyInstance } from 'fastify';
import type { JwkSet } from '../../keys/signing-key.js';

/**
 * GET /.well-known/jwks.json: the public keys resource servers verify tokens with, from memory.
 * The body is serialised once per key refresh. No response schema: the store builds each entry from
 * an allow-list of public members (keys/public-jwk.ts), so there is nothing private to strip.
 */
export default async function jwksRoute(app: FastifyInstance): Promise<void> {
  const { config } = app;
  const cacheControl = `public, max-age=${config.keys.jwksMaxAge}`;
  let servedSet: JwkSet | undefined;
  let body = '';

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    const set = app.keys.jwks();
    if (set !== servedSet) {
      body = JSON.stringify(set);
      servedSet = set;
    }
    return (
      reply
        .header('cache-control', cacheControl)
        // Resource servers and browser clients fetch this cross-origin; it holds only public keys.
        .header('access-control-allow-origin', '*')
        // RFC 7517 §8.5 registers application/jwk-set+json, but plain JSON is what every JOSE
        // library and HTTP client accepts without special-casing.
        .type('application/json; charset=utf-8')
        .send(body)
    );
  });
}
