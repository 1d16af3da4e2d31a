import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config/index.js';
import { OAuthError } from './oauth/errors.js';
import { frameworkErrors, timeoutOptions } from './app.js';
import { RequestLogController } from './logging.js';
import errorHandler, { sendOAuthError } from './plugins/app/error-handler.js';
import inputGuard from './plugins/app/input-guard.js';
import adminAuditRoutes from './routes/admin/audit-events.js';
import adminClientRoutes from './routes/admin/clients.js';
import adminKeyRoutes from './routes/admin/keys.js';
import adminOpenApiRoutes from './routes/admin/openapi.js';
import adminUserRoutes from './routes/admin/users.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The public app whose clients, keys and database the admin listener manages. */
    gatehouse: FastifyInstance;
    /** Every route the admin listener registered (method and URL), which its OpenAPI document must list. */
    adminRoutes: ReadonlyArray<{ method: string; url: string }>;
  }
}

/** The methods that change something: each is an audited admin action. */
const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether an Authorization header carries the admin token (SHA-256 both sides, constant-time compare). */
export function isAdminAuthorization(header: string | undefined, token: string): boolean {
  // RFC 9110 §11.1: the scheme is case-insensitive; the token is compared exactly.
  const match = /^bearer +([\x21-\x7e]+)$/i.exec(header ?? '');
  const presented = createHash('sha256')
    .update(match?.[1] ?? '')
    .digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(presented, expected) && match !== null && token !== '';
}

/**
 * The admin listener: a second Fastify instance on ADMIN_HOST:ADMIN_PORT beside the public one, sharing
 * its database, client service and key store. Every /admin route needs `Authorization: Bearer
 * ADMIN_TOKEN`; /healthz (for the orchestrator) and /metrics (for Prometheus) do not. Not listening yet; startServer listens.
 */
export async function buildAdminApp(config: Readonly<Config>, gatehouse: FastifyInstance): Promise<FastifyInstance> {
  const admin = Fastify({
    loggerInstance: gatehouse.log.child({ listener: 'admin' }),
    logController: new RequestLogController(config),
    bodyLimit: config.server.bodyLimit,
    ...timeoutOptions(config),
    forceCloseConnections: 'idle',
    frameworkErrors,
  });
  admin.decorate('gatehouse', gatehouse);
  const routes: Array<{ method: string; url: string }> = [];
  admin.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  admin.decorate('adminRoutes', routes);
  await admin.register(errorHandler);
  await admin.register(inputGuard);
  admin.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });
  admin.get('/healthz', async () => ({ status: 'ok' }));
  // Prometheus scrapes without the token: the admin listener is off the public internet, and the
  // metrics hold counts and timings only, never anything a client sent.
  admin.get('/metrics', async (_request, reply) => {
    const registry = gatehouse.metrics;
    if (!registry) throw new OAuthError('not_found', 'metrics are off');
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  await admin.register(
    async function api(scope) {
      // Requests that carried the admin token: only their changes are admin actions.
      const authenticated = new WeakSet<object>();
      scope.addHook('onRequest', async (request, reply) => {
        if (isAdminAuthorization(request.headers.authorization, config.admin.token)) {
          authenticated.add(request);
          return;
        }
        request.log.warn({ ip: request.ip }, 'admin request without the admin token refused');
        return sendOAuthError(
          reply,
          new OAuthError('invalid_token', 'the admin API needs Authorization: Bearer <ADMIN_TOKEN>', {
            headers: { 'www-authenticate': 'Bearer realm="gatehouse-admin"' },
          }),
        );
      });
      // Every admin API change is an `admin.action` audit event (its route template, never a body), beside
      // the specific event the change itself records (client.updated, key.rotated…).
      scope.addHook('onResponse', async (request, reply) => {
        if (!MUTATIONS.has(request.method) || !authenticated.has(request)) return;
        const params = (request.params ?? {}) as Record<string, unknown>;
        gatehouse.audit.record({
          type: 'admin.action',
          actor: 'admin',
          subject: typeof params.sub === 'string' ? params.sub : null,
          clientId: typeof params.client_id === 'string' ? params.client_id : null,
          address: request.ip,
          details: {
            method: request.method,
            route: request.routeOptions.url ?? null,
            status: reply.statusCode,
            // The admin API has one credential; it is named, never shown.
            admin: 'ADMIN_TOKEN',
            via: 'admin_api',
          },
        });
      });
      await scope.register(adminClientRoutes);
      await scope.register(adminAuditRoutes);
      await scope.register(adminUserRoutes);
      await scope.register(adminKeyRoutes);
      await scope.register(adminOpenApiRoutes);
    },
    { prefix: '/admin' },
  );
  return admin;
}
