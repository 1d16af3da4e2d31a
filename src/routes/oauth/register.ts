import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { JSON_MEDIA, requireMediaType } from '../../http/form.js';
import type { Client } from '../../oauth/client.js';
import type { PresentedToken } from '../../services/clients/registration.js';

/** RFC 6750 §2.1 b64token after the (case-insensitive) Bearer scheme. */
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

// Values are checked by validateClientMetadata, not here: a schema with types would let Ajv coerce
// (a string into a one-item array), and its errors could not name RFC 7591 §3.2.2 codes.
const bodySchema = { type: 'object' } as const;
const paramsSchema = {
  type: 'object',
  required: ['client_id'],
  properties: { client_id: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

type Body = Record<string, unknown>;
type Params = { client_id: string };

/** The bearer token of a request: undefined when there is no Authorization header, null when it is not a Bearer token. */
function bearerToken(request: FastifyRequest): PresentedToken {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1] ?? null;
}

function noStore(reply: FastifyReply): FastifyReply {
  // RFC 7591 §3.2.1: the response carries credentials.
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

/** RFC 7591 §3.1: the registration request is a JSON document (415 invalid_request otherwise). */
async function requireJson(request: FastifyRequest): Promise<void> {
  requireMediaType(request, JSON_MEDIA);
}

/**
 * POST /register (RFC 7591) and GET/PUT/DELETE /register/:client_id (RFC 7592), over
 * app.clientRegistration. Registered only when DCR_ENABLED. A refused client metadata field is a
 * ClientMetadataError in the request's terms; the error handler's one table (src/http/errors.ts) answers
 * it by its field (invalid_redirect_uri or invalid_client_metadata, 400).
 */
export default async function registerRoutes(app: FastifyInstance): Promise<void> {
  const registration = app.clientRegistration;
  /** The client each RFC 7592 request authenticated as. */
  const authenticated = new WeakMap<FastifyRequest, Client>();

  async function authenticate(request: FastifyRequest<{ Params: Params }>): Promise<void> {
    authenticated.set(request, await registration.authenticate(request.params.client_id, bearerToken(request)));
  }

  function clientOf(request: FastifyRequest): Client {
    const client = authenticated.get(request);
    if (!client) throw new Error('an RFC 7592 route ran without its authentication hook');
    return client;
  }

  app.post<{ Body: Body }>(
    '/register',
    // RFC 7591 §5: open registration is a resource-exhaustion target, so it sits under the per-address limit.
    {
      schema: { body: bodySchema },
      config: { ...app.rateLimited },
      // Before the body is read, but after the rate limit's onRequest hook: failed guesses are counted too.
      preParsing: async (request, _reply, payload) => {
        registration.checkInitialAccessToken(bearerToken(request));
        return payload;
      },
      preValidation: requireJson,
    },
    async (request, reply) => {
      const response = await registration.register(request.body, request.ip);
      return noStore(reply).code(201).send(response);
    },
  );

  app.get<{ Params: Params }>(
    '/register/:client_id',
    { schema: { params: paramsSchema }, onRequest: authenticate },
    async (request, reply) =>
      noStore(reply)
        .code(200)
        .send(registration.read(clientOf(request))),
  );

  app.put<{ Params: Params; Body: Body }>(
    '/register/:client_id',
    { schema: { params: paramsSchema, body: bodySchema }, onRequest: authenticate, preValidation: requireJson },
    async (request, reply) => {
      const response = await registration.replace(clientOf(request), request.body, request.ip);
      return noStore(reply).code(200).send(response);
    },
  );

  app.delete<{ Params: Params }>(
    '/register/:client_id',
    { schema: { params: paramsSchema }, onRequest: authenticate },
    async (request, reply) => {
      await registration.deregister(clientOf(request), request.ip);
      return noStore(reply).code(204).send();
    },
  );
}
