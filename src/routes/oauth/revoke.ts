import { clientAuthenticationFailures } from '../../services/audit/audit-log.js';
import type { FastifyInstance } from 'fastify';
import { authenticateClient } from '../../oauth/client-authentication.js';
import { formParams } from '../../http/form.js';

const bodySchema = {
  type: 'object',
  required: ['token'],
  properties: {
    token: { type: 'string', maxLength: 4096 },
    token_type_hint: { type: 'string', maxLength: 64 },
    client_id: { type: 'string', maxLength: 512 },
    client_secret: { type: 'string', maxLength: 512 },
    client_assertion_type: { type: 'string', maxLength: 128 },
    client_assertion: { type: 'string', maxLength: 8192 },
  },
} as const;

/**
 * POST /revoke (RFC 7009): a client revokes its own refresh token, which revokes the whole chain.
 * Unknown tokens, access tokens (self-contained JWTs that expire on their own) and other clients'
 * tokens all answer 200 (§2.2), so the endpoint tells nothing about tokens that are not the caller's.
 * token_type_hint is only a hint (§2.1): the token is looked up as a refresh token whatever it says.
 */
export default async function revokeRoute(app: FastifyInstance): Promise<void> {
  app.post<{ Body: { token: string; token_type_hint?: string } & Record<string, string | string[]> }>(
    '/revoke',
    {
      schema: { body: bodySchema },
      preValidation: formParams(),
    },
    async (request, reply) => {
      const { client } = await authenticateClient(
        { authorization: request.headers.authorization, body: request.body },
        {
          registry: app.clients,
          usage: app.clientUsage,
          assertions: app.clientAssertions,
          guard: app.clientAuthThrottle.guard(request.ip, '/revoke'),
          failures: clientAuthenticationFailures(app.audit, request.ip, '/revoke'),
        },
      );
      await app.tokens.revoke(request.body.token, client.client_id);
      return reply.code(200).header('cache-control', 'no-store').send();
    },
  );
}
