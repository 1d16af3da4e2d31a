import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { batchCounts } from '../../db/batch.js';
import type { ClientAuthThrottleObserver } from '../../services/clients/auth-throttle.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics of this process, served by the admin listener's /metrics (null when it is off). */
    metrics: Registry | null;
  }
}

/** The grant types a token request may be counted under; anything else is "other" (bounded labels). */
const GRANT_TYPES = new Set(['authorization_code', 'refresh_token', 'client_credentials']);

/**
 * Request and token metrics in Prometheus form, plus Node's process metrics: per route template (never
 * the raw URL, so label sets stay bounded and nothing a client sent ends up in a label), method and
 * status; token responses per grant type. Nothing secret is a label. One registry per app, so several
 * apps in one process (tests) do not share counters.
 */
export default fp(
  async function metrics(app: FastifyInstance) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const requests = new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests answered, by route template, method and status code.',
      labelNames: ['route', 'method', 'status'] as const,
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time to answer HTTP requests, by route template and method.',
      labelNames: ['route', 'method'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    const tokens = new Counter({
      name: 'gatehouse_token_responses_total',
      help: 'Token endpoint answers by grant type and outcome (issued, or the HTTP status of the refusal).',
      labelNames: ['grant_type', 'outcome'] as const,
      registers: [registry],
    });
    // Hot statements batched across concurrent requests (src/db/batch.ts); counted for the whole process.
    const batchCounter = (name: string, help: string, field: 'statements' | 'items' | 'fallbacks') =>
      new Counter({
        name,
        help,
        labelNames: ['statement'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const [statement, count] of batchCounts()) this.inc({ statement }, count[field]);
        },
      });
    batchCounter(
      'gatehouse_db_batch_statements_total',
      "Statements that carried several concurrent requests' rows at once, by statement.",
      'statements',
    );
    batchCounter('gatehouse_db_batched_items_total', 'Rows those batch statements carried, by statement.', 'items');
    batchCounter(
      'gatehouse_db_batch_fallbacks_total',
      'Rows run one by one after their batch statement failed (a deadlock or one bad row), by statement.',
      'fallbacks',
    );
    app.decorate('metrics', registry);

    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.statusCode;
      requests.inc({ route, method: request.method, status: String(status) });
      duration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
      if (route === '/token' && request.method === 'POST') {
        const grant = (request.body as Record<string, unknown> | undefined)?.grant_type;
        tokens.inc({
          grant_type: typeof grant === 'string' && GRANT_TYPES.has(grant) ? grant : 'other',
          outcome: status === 200 ? 'issued' : String(status),
        });
      }
    });
  },
  { name: 'metrics' },
);

/**
 * Counters of the client-authentication throttle in `registry` (none when metrics are off): failed
 * authentications, and requests refused with 429, by endpoint and by the limit that refused them.
 */
export function clientAuthThrottleObserver(registry: Registry | null): ClientAuthThrottleObserver | undefined {
  if (!registry) return undefined;
  const failures = new Counter({
    name: 'gatehouse_client_auth_failures_total',
    help: 'Failed client authentications (unknown client, wrong method or secret), by endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'gatehouse_client_auth_throttled_total',
    help: 'Client authentications refused with 429 before the secret was checked, by endpoint and limit (client_address, address, client).',
    labelNames: ['endpoint', 'limit'] as const,
    registers: [registry],
  });
  return {
    failed: (endpoint) => failures.inc({ endpoint }),
    refused: (endpoint, limit) => refusals.inc({ endpoint, limit }),
  };
}
