import { clientAuthenticationFailures } from '../../services/audit/audit-log.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { authenticateClient } from '../../oauth/client-authentication.js';
import { OAuthError } from '../../oauth/errors.js';
import type { TokenParams } from '../../oauth/grants/grant.js';
import { formParams } from '../../http/form.js';
import { auditOnRequestLine } from '../../logging.js';

/** Parameters that RFC 8707 §2 lets a client repeat; every other one must appear once (RFC 6749 §3.2). */
const REPEATABLE = new Set(['resource']);

const bodySchema = {
  type: 'object',
  required: ['grant_type'],
  properties: {
    grant_type: { type: 'string', maxLength: 128 },
    scope: { type: 'string', maxLength: 2048 },
    resource: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 2048 } },
    client_id: { type: 'string', maxLength: 512 },
    client_secret: { type: 'string', maxLength: 512 },
    client_assertion_type: { type: 'string', maxLength: 128 },
    client_assertion: { type: 'string', maxLength: 8192 },
    code: { type: 'string', maxLength: 512 },
    code_verifier: { type: 'string', maxLength: 256 },
    redirect_uri: { type: 'string', maxLength: 2048 },
    refresh_token: { type: 'string', maxLength: 512 },
  },
} as const;

/** POST /token: authenticates the client, then hands the request to its grant type's module (services/tokens). */
export default async function tokenRoute(app: FastifyInstance): Promise<void> {
  app.post<{ Body: TokenParams }>(
    '/token',
    {
      schema: { body: bodySchema },
      preValidation: formParams(REPEATABLE),
    },
    async (request, reply: FastifyReply) => {
      const params = request.body;
      if (!app.tokens.supports(params.grant_type)) {
        throw new OAuthError('unsupported_grant_type', `unsupported grant_type: ${params.grant_type}`);
      }
      // RFC 9449 §4.3: the DPoP proof, if any, before anything is looked up.
      const proof = await app.tokens.checkDpopProof(request.headers.dpop);
      const { client } = await authenticateClient(
        { authorization: request.headers.authorization, body: params },
        {
          registry: app.clients,
          usage: app.clientUsage,
          assertions: app.clientAssertions,
          guard: app.clientAuthThrottle.guard(request.ip, '/token'),
          failures: clientAuthenticationFailures(app.audit, request.ip, '/token'),
        },
      );
      // token.issued rides on this request's one log line (logging.ts).
      const response = await app.tokens.issue(params, client, proof, request.ip, (audit) =>
        auditOnRequestLine(request, audit),
      );
      // RFC 9449 §8.2: the nonce the client should use next, when nonces are required.
      const nonce = app.tokens.dpopNonce();
      if (nonce !== undefined) reply.header('dpop-nonce', nonce);
      // RFC 6749 §5.1: token responses must not be cached.
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(response);
    },
  );
}
