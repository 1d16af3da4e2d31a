import type { FastifyInstance } from 'fastify';

/** The path parameter of one key's routes. Also the OpenAPI document's schema. */
export const kidParams = {
  type: 'object',
  required: ['kid'],
  properties: { kid: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;
/** The optional body of a retire request. Also the OpenAPI document's schema. */
export const retireBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { immediately: { type: 'boolean' } },
} as const;

/**
 * Signing keys, as `gatehouse keys` manages them: list; rotate (the next key is published in the JWKS at
 * once and signs after KEY_ROTATION_DELAY_SECONDS); retire a key, keeping it published until every
 * token it signed has expired, or with `{"immediately": true}` (a compromised key) dropping it at once.
 * This replica's key store picks the change up immediately; the others at their next refresh.
 */
export default async function adminKeyRoutes(admin: FastifyInstance): Promise<void> {
  const keys = () => admin.gatehouse.keys;

  admin.get('/keys', async () => ({ keys: await keys().list() }));

  admin.post('/keys/rotate', async (request, reply) => {
    const key = await keys().rotate({ actor: 'admin', address: request.ip, via: 'admin_api' });
    return reply.code(201).send({ key });
  });

  admin.post<{ Params: { kid: string }; Body: { immediately?: boolean } | null }>(
    '/keys/:kid/retire',
    { schema: { params: kidParams, body: retireBody } },
    // A refusal is a KeyOperationError (not_found / conflict), answered by the error handler's one table.
    async (request) =>
      keys().retire(request.params.kid, {
        immediately: request.body?.immediately === true,
        by: { actor: 'admin', address: request.ip, via: 'admin_api' },
      }),
  );
}
