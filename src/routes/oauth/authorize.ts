import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireForm } from '../../http/form.js';
import { sendOutcome } from '../../http/outcome.js';
import type { AuthorizeParams } from '../../services/authorization/parameters.js';
import { htmlErrorRenderer } from '../interaction/error-page.js';

const paramSchema = {
  type: 'object',
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
} as const;

/**
 * GET and POST /authorize (RFC 6749 §4.1.1): the authorization service validates and stores the pending
 * request, then signs in (host handshake), asks for consent, or answers with a code.
 */
export default async function authorizeRoute(app: FastifyInstance): Promise<void> {
  async function handle(request: FastifyRequest, reply: FastifyReply, params: AuthorizeParams): Promise<FastifyReply> {
    // Error pages too: the URL carries the client's state and PKCE challenge.
    reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
    return sendOutcome(reply, await app.authorization.authorize(params, request.cookies, request.ip));
  }

  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };
  app.get<{ Querystring: AuthorizeParams }>(
    '/authorize',
    { schema: { querystring: paramSchema }, config: routeConfig },
    (request, reply) => handle(request, reply, request.query),
  );
  app.post<{ Body: AuthorizeParams }>(
    '/authorize',
    {
      schema: { body: paramSchema },
      config: routeConfig,
      preValidation: async (request) => requireForm(request),
    },
    (request, reply) => handle(request, reply, request.body ?? {}),
  );
}
