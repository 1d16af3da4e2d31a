import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SIGN_IN_COMPLETE_PATH } from '../../handshake/login-request.js';
import { requireForm } from '../../http/form.js';
import { sendOutcome } from '../../http/outcome.js';
import { OAuthError } from '../../oauth/errors.js';
import { htmlErrorRenderer } from './error-page.js';

/** Longest login_response accepted: a signed JWT with a modest `claims` object fits easily. */
export const MAX_LOGIN_RESPONSE_LENGTH = 8192;

const paramsSchema = {
  type: 'object',
  required: ['login_response'],
  properties: {
    // An array here (the parameter repeated) is refused before validation, with its own message.
    login_response: { type: 'string', minLength: 1, maxLength: MAX_LOGIN_RESPONSE_LENGTH },
  },
} as const;

interface Params {
  login_response: string;
}

/** RFC 6749 §3.1: a parameter must not appear twice (two answers in one request could be confused). */
function refuseRepeated(params: unknown): void {
  const value = (params as Record<string, unknown> | undefined)?.login_response;
  if (Array.isArray(value)) throw new OAuthError('invalid_request', 'parameter login_response is repeated');
}

/**
 * GET/POST /sign-in/complete: the host's signed answer comes back here (docs/handshake.md); the
 * authorization service verifies it, signs the browser in and continues the request.
 */
export default async function signInCompleteRoute(app: FastifyInstance): Promise<void> {
  async function handle(request: FastifyRequest, reply: FastifyReply, token: string): Promise<FastifyReply> {
    return sendOutcome(reply, await app.authorization.answerSignIn(token, request.cookies, request.ip));
  }

  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };
  app.addHook('onSend', async (_request, reply) => {
    // The URL carried a signed assertion: never cached, never sent on as a Referer.
    reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
  });

  app.get<{ Querystring: Params }>(
    SIGN_IN_COMPLETE_PATH,
    // No HEAD twin: answering is one-time, and a HEAD request must not use an answer up.
    {
      config: routeConfig,
      exposeHeadRoute: false,
      schema: { querystring: paramsSchema },
      preValidation: async (request) => refuseRepeated(request.query),
    },
    async (request, reply) => handle(request, reply, request.query.login_response),
  );

  app.post<{ Body: Params }>(
    SIGN_IN_COMPLETE_PATH,
    {
      config: routeConfig,
      schema: { body: paramsSchema },
      preValidation: async (request) => {
        // The host posts an HTML form; no other body type is accepted.
        requireForm(request);
        refuseRepeated(request.body);
      },
    },
    async (request, reply) => handle(request, reply, request.body.login_response),
  );
}
