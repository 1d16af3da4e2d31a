import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, type Registry } from 'prom-client';
import { AuditLog, type AuditObserver } from '../../services/audit/audit-log.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit event stream (docs/audit.md): services record events here; rows are written in batches. */
    audit: AuditLog;
  }
}

/** Counters of the audit log in `registry` (none when metrics are off): events recorded by type, events lost. */
function auditObserver(registry: Registry | null): AuditObserver | undefined {
  if (!registry) return undefined;
  const recorded = new Counter({
    name: 'gatehouse_audit_events_total',
    help: 'Audit events recorded (logged and queued for the audit_events table), by type.',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  const lost = new Counter({
    name: 'gatehouse_audit_events_lost_total',
    help: 'Audit events logged but not stored: the write failed (database unavailable) or the buffer was full.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  return {
    recorded: (type) => recorded.inc({ type }),
    lost: (count, reason) => lost.inc({ reason }, count),
  };
}

/**
 * Decorates `app.audit`: events are logged at once and written to `audit_events` in batches, off every
 * request's path. The buffer is flushed when the app closes, before the database does.
 */
export default fp(
  async function audit(app: FastifyInstance) {
    const log = new AuditLog({
      db: () => app.database.db,
      clock: app.clock,
      logger: app.log,
      observer: auditObserver(app.metrics),
      tokenEvents: app.config.audit.tokenEvents,
    });
    app.decorate('audit', log);
    // preClose for what is buffered now; onClose (before the database plugin's, which was registered
    // first) for what requests finishing during the close recorded since.
    app.addHook('preClose', async () => log.flush());
    app.addHook('onClose', async () => log.close());
  },
  { name: 'audit', dependencies: ['database'] },
);
