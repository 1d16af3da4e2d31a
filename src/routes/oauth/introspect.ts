import { clientAuthenticationFailures } from '../../services/audit/audit-log.js';
import type { FastifyInstance } from 'fastify';
import { authenticateClient } from '../../oauth/client-authentication.js';
import { OAuthError } from '../../oauth/errors.js';
import { formParams } from '../../http/form.js';

const bodySchema = {
  type: 'object',
  required: ['token'],
  properties: {
    // As large as the default body limit: anything this long that is not one of our tokens is simply
    // inactive (RFC 7662 §2.2), not a malformed request.
    token: { type: 'string', maxLength: 16384 },
    token_type_hint: { type: 'string', maxLength: 64 },
    client_id: { type: 'string', maxLength: 512 },
    client_secret: { type: 'string', maxLength: 512 },
    client_assertion_type: { type: 'string', maxLength: 128 },
    client_assertion: { type: 'string', maxLength: 8192 },
  },
} as const;

/**
 * POST /introspect (RFC 7662): a confidential client asks whether a token is active. Authentication is
 * required (§2.1, and §4 against token scanning), by the client's registered method (a secret or
 * private_key_jwt): a public client could name any client_id, so it is refused as unauthenticated
 * (RFC 6749 §5.2). Not
 * rate-limited, like /token and /revoke: every request authenticates a client first.
 */
export default async function introspectRoute(app: FastifyInstance): Promise<void> {
  app.post<{ Body: { token: string; token_type_hint?: string } & Record<string, string | string[]> }>(
    '/introspect',
    {
      schema: { body: bodySchema },
      preValidation: formParams(),
    },
    async (request, reply) => {
      const { client, method } = await authenticateClient(
        { authorization: request.headers.authorization, body: request.body },
        {
          registry: app.clients,
          usage: app.clientUsage,
          assertions: app.clientAssertions,
          guard: app.clientAuthThrottle.guard(request.ip, '/introspect'),
          failures: clientAuthenticationFailures(app.audit, request.ip, '/introspect'),
        },
      );
      // A public client names itself only; private_key_jwt and the secret methods prove who the caller is.
      if (method === 'none')
        throw new OAuthError('invalid_client', 'introspection requires client authentication with a client secret');
      const answer = await app.tokens.introspect(request.body.token, client);
      // The answer changes as tokens expire or are revoked, and it describes a token: never cached.
      return reply.code(200).header('cache-control', 'no-store').send(answer);
    },
  );
}
