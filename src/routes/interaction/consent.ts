import type { FastifyInstance } from 'fastify';
import { requireForm } from '../../http/form.js';
import { sendOutcome } from '../../http/outcome.js';
import { OAuthError } from '../../oauth/errors.js';
import { htmlErrorRenderer } from './error-page.js';

/** Pending request ids are generated tokens (43 base64url characters); the bound only stops abuse. */
const REQUEST_ID = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' } as const;

const querySchema = {
  type: 'object',
  required: ['request'],
  properties: { request: REQUEST_ID },
} as const;

const bodySchema = {
  type: 'object',
  required: ['request', 'decision', 'csrf'],
  properties: {
    request: REQUEST_ID,
    decision: { type: 'string', enum: ['allow', 'deny'] },
    csrf: { type: 'string', minLength: 1, maxLength: 128 },
    // The language the page was shown in, so the pages after the POST (an error) keep it.
    ui_locales: { type: 'string', maxLength: 256 },
  },
} as const;

interface ConsentQuery {
  request: string;
}

interface ConsentBody {
  request: string;
  decision: 'allow' | 'deny';
  csrf: string;
}

/** RFC 6749 §3.1: request parameters must not be included more than once. */
function rejectRepeated(params: unknown): void {
  if (!params || typeof params !== 'object') return;
  for (const [name, value] of Object.entries(params)) {
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`);
  }
}

/** GET /consent shows what a client asks for; POST /consent records the user's decision and answers the client. */
export default async function consentRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };
  const action = `${app.pageContext.basePath}/consent`;

  app.get<{ Querystring: ConsentQuery }>(
    '/consent',
    {
      schema: { querystring: querySchema },
      config: routeConfig,
      preValidation: async (request) => rejectRepeated(request.query),
    },
    async (request, reply) =>
      sendOutcome(reply, await app.authorization.showConsent(request.query.request, request.cookies), { action }),
  );

  app.post<{ Body: ConsentBody }>(
    '/consent',
    {
      schema: { body: bodySchema },
      config: routeConfig,
      preValidation: async (request) => {
        requireForm(request);
        rejectRepeated(request.body);
      },
    },
    async (request, reply) => {
      const { request: requestId, decision, csrf } = request.body;
      return sendOutcome(
        reply,
        await app.authorization.decideConsent({ requestId, decision, csrf }, request.cookies, request.ip),
      );
    },
  );
}
