import { clientAuthenticationFailures } from '../../services/audit/audit-log.js';
import type { FastifyInstance } from 'fastify';
import { requireForm } from '../../http/form.js';
import { authenticateClient } from '../../oauth/client-authentication.js';
import { OAuthError } from '../../oauth/errors.js';
import type { AuthorizeParams } from '../../services/authorization/parameters.js';

const bodySchema = {
  type: 'object',
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
} as const;

/**
 * POST /par, the pushed authorization request endpoint (RFC 9126 §2): the client authenticates as at
 * /token (a public client names itself with client_id, §2), pushes the parameters of an authorization
 * request in the form body, and gets 201 with a single-use, short-lived request_uri for /authorize (§2.2).
 * Errors are JSON (§2.3). Rate limited like /authorize: each accepted push writes a row, and a public
 * client's push proves nothing about who sent it. The client is read as /authorize reads it, so a
 * client-id document client can push before it has ever been to /authorize.
 */
export default async function parRoute(app: FastifyInstance): Promise<void> {
  const lookup = { get: async (clientId: string) => (await app.clients.resolveForAuthorization(clientId)).client };
  app.post<{ Body: AuthorizeParams }>(
    '/par',
    {
      schema: { body: bodySchema },
      config: { ...app.rateLimited },
      preValidation: async (request) => requireForm(request),
    },
    async (request, reply) => {
      const params = request.body ?? {};
      const { client } = await authenticateClient(
        { authorization: request.headers.authorization, body: params },
        {
          registry: lookup,
          usage: app.clientUsage,
          assertions: app.clientAssertions,
          guard: app.clientAuthThrottle.guard(request.ip, '/par'),
          failures: clientAuthenticationFailures(app.audit, request.ip, '/par'),
        },
      );
      const pushed = await app.authorization.push(params, client);
      // The request_uri is a one-time credential for this request: never cached.
      return reply.code(201).header('cache-control', 'no-store').send(pushed);
    },
  );
  // RFC 9126 §2.3: any other method is 405.
  app.get('/par', async () => {
    throw new OAuthError('method_not_allowed', 'the pushed authorization request endpoint accepts only POST', {
      headers: { allow: 'POST' },
    });
  });
}
