import type { FastifyInstance } from 'fastify';
import {
  discoveryDocument,
  openIdConfiguration,
  pathInsertedDiscoveryPath,
} from '../../services/discovery-document.js';

/** Metadata can change only with configuration, so caches may keep it a while. */
const CACHE_CONTROL = 'public, max-age=3600';

/** RFC 8414 and OIDC discovery documents, serialised once at start and served from memory. */
export default async function metadataRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app;
  const oauth = JSON.stringify(discoveryDocument(config));
  const oidc = JSON.stringify(openIdConfiguration(config));
  const serve = (body: string) => async (_req: unknown, reply: import('fastify').FastifyReply) =>
    reply.header('cache-control', CACHE_CONTROL).type('application/json; charset=utf-8').send(body);

  app.get('/.well-known/oauth-authorization-server', serve(oauth));
  app.get('/.well-known/openid-configuration', serve(oidc));
  const inserted = pathInsertedDiscoveryPath(config.issuer, 'oauth-authorization-server');
  if (inserted) app.get(inserted, serve(oauth));
  const insertedOidc = pathInsertedDiscoveryPath(config.issuer, 'openid-configuration');
  if (insertedOidc) app.get(insertedOidc, serve(oidc));
}
