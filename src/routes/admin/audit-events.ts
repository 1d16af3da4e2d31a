import type { FastifyInstance } from 'fastify';
import { type AuditQuery, queryAuditEvents } from '../../services/audit/audit-query.js';

const auditQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    subject: { type: 'string' },
    client_id: { type: 'string' },
    type: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
  },
} as const;

/**
 * The audit trail (docs/audit.md): `GET /admin/audit-events`, newest first, filtered by subject, client,
 * type (or a type prefix such as `consent.`) and time, one page per request (`limit`, at most
 * 500) with a keyset cursor (`next_cursor`, stable while new events arrive). Each parameter is
 * checked by the query service, which answers a bad one with a 400 naming it.
 */
export default async function adminAuditRoutes(admin: FastifyInstance): Promise<void> {
  admin.get<{ Querystring: AuditQuery }>(
    '/audit-events',
    // Strings only: the query service parses limit and times, so its messages are the one set of errors.
    { schema: { querystring: auditQuery } },
    async (request) => queryAuditEvents(admin.gatehouse.database.db, request.query, admin.gatehouse.clock),
  );
}
