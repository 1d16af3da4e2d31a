import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type AccessToken, PRM_PATH, type ProtectedResource } from './protected-resource.js';

/** The ProtectedResource, or a getter for one known only once the server listens (a port picked by the system). */
type Source = ProtectedResource | (() => ProtectedResource);

const resolve = (source: Source): ProtectedResource => (typeof source === 'function' ? source() : source);

const verified = new WeakMap<FastifyRequest, AccessToken>();

/** The verified token of a request that passed `requireToken`. */
export function tokenOf(request: FastifyRequest): AccessToken {
  const token = verified.get(request);
  if (!token) throw new Error('tokenOf: the route has no requireToken hook');
  return token;
}

/**
 * An onRequest hook (it runs before the body is read: an unauthenticated request costs no parsing) that
 * admits a request only with a valid access token carrying every scope in `scopes`, and otherwise sends
 * the 401/403/503 answer with its challenges. The DPoP `htu` is the request's path on the resource's own
 * origin (the URL clients call, whatever a proxy in front rewrote in Host).
 */
export function requireToken(source: Source, scopes: readonly string[] = []) {
  return async function checkToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const resource = resolve(source);
    const url = new URL(request.url, new URL(resource.resource).origin).href;
    const result = await resource.authenticate({ method: request.method, url, headers: request.headers }, scopes);
    if (result.ok) {
      verified.set(request, result.token);
      return;
    }
    const { status, headers, body } = result.refusal;
    if (status === 503) request.log.warn('the authorization server keys could not be fetched');
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    await reply.code(status).send(body);
  };
}

/** Serves the RFC 9728 metadata at the well-known root and at the path-inserted URL the challenges name (§3.1). */
export function serveMetadata(app: FastifyInstance, source: Source, path: string): void {
  const handler = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.header('cache-control', 'public, max-age=300').send(resolve(source).metadata());
  app.get(PRM_PATH, handler);
  if (path !== '/') app.get(`${PRM_PATH}${path.replace(/\/$/, '')}`, handler);
}
