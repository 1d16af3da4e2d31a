import type { FastifyInstance } from 'fastify';
import { OAuthError } from '../../oauth/errors.js';
import { type AuditQuery, queryAuditEvents } from '../../services/audit/audit-query.js';

const PARAMETERS = new Set<string>(['subject', 'client_id', 'type', 'since', 'until', 'limit', 'cursor']);

/** The query string as AuditQuery: each known parameter once; anything else is a 400 naming it. */
function auditQuery(query: Record<string, string | string[] | undefined>): AuditQuery {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (!PARAMETERS.has(name))
      throw new OAuthError(
        'invalid_request',
        `unknown parameter: ${name.slice(0, 64)} (subject, client_id, type, since, until, limit, cursor)`,
      );
    if (typeof value !== 'string') throw new OAuthError('invalid_request', `${name}: must appear once`);
    out[name] = value;
  }
  return out;
}

/**
 * The audit trail (docs/audit.md): `GET /admin/audit-events`, newest first, filtered by subject, client,
 * type (or a type prefix such as `consent.`) and time, one page per request (`limit`, at most 500)
 * with a keyset cursor (`next_cursor`, stable while new events arrive). The query service checks each
 * value and answers a bad one with a 400 naming it.
 */
export default async function adminAuditRoutes(admin: FastifyInstance): Promise<void> {
  admin.get<{ Querystring: Record<string, string | string[] | undefined> }>('/audit-events', async (request) =>
    queryAuditEvents(admin.gatehouse.database.db, auditQuery(request.query), admin.gatehouse.clock),
  );
}
