import type { FastifyInstance } from 'fastify';
import { checkReadiness, type ReadinessCheck } from '../services/readiness.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Named checks `/readyz` runs; plugins add theirs (database, migrations, signing keys). */
    readinessChecks: Array<[string, ReadinessCheck]>;
  }
}

const statusSchema = {
  type: 'object',
  properties: { status: { type: 'string' }, checks: { type: 'object', additionalProperties: { type: 'string' } } },
} as const;

/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: it can serve). */
export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', { schema: { response: { 200: statusSchema, 503: statusSchema } } }, async (request, reply) => {
    const result = await checkReadiness(app.readinessChecks);
    reply.header('cache-control', 'no-store');
    if (!result.ready) {
      request.log.warn({ checks: result.checks }, 'not ready');
      return reply.code(503).send({ status: 'not_ready', checks: result.checks });
    }
    return { status: 'ready', checks: result.checks };
  });
}
