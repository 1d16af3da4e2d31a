import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ChangedBy } from '../../services/clients/index.js';
import { CLIENT_ID_FORM } from '../../oauth/client-metadata.js';
import { OAuthError } from '../../oauth/errors.js';
import type { Client } from '../../oauth/client.js';

/** A client as the admin API shows it: everything but the stored hashes. */
export function clientView(client: Client): Record<string, unknown> {
  const { secret_hash: _secret, registration_access_token_hash: _registration, ...rest } = client;
  return rest;
}

/** The path parameter of one client's routes. Also the OpenAPI document's schema. */
export const idParams = {
  type: 'object',
  required: ['client_id'],
  properties: { client_id: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const;

/** A body of client metadata (the rules are the clients service's). Also the OpenAPI document's schema. */
export const metadataBody = { type: 'object', maxProperties: 64 } as const;

/** The operator behind an admin API change, for the audit trail. */
function operator(request: FastifyRequest): ChangedBy {
  return { actor: 'admin', address: request.ip, via: 'admin_api' };
}

/**
 * Clients, as `gatehouse clients` manages them, over HTTP: list, create (the secret is in the response,
 * once), show, update (metadata fields; `disabled: true|false` disables or enables), delete and
 * rotate-secret. Validation is the one every client source shares (RFC 7591 metadata rules).
 */
export default async function adminClientRoutes(admin: FastifyInstance): Promise<void> {
  const clients = () => admin.gatehouse.clientAdmin;

  admin.get('/clients', async () => ({ clients: (await clients().list()).map(clientView) }));

  admin.post<{ Body: Record<string, unknown> }>(
    '/clients',
    { schema: { body: metadataBody } },
    async (request, reply) => {
      const { client_id: clientId, ...metadata } = request.body;
      if (clientId !== undefined && typeof clientId !== 'string')
        throw new OAuthError('invalid_client_metadata', 'client_id: must be a string');
      // RFC 6749 Appendix A.1: visible ASCII; a malformed id is bad metadata, not a conflict.
      if (typeof clientId === 'string' && !CLIENT_ID_FORM.test(clientId)) {
        throw new OAuthError(
          'invalid_client_metadata',
          'client_id: must be 1 to 255 visible ASCII characters (RFC 6749 Appendix A.1)',
        );
      }
      const by = operator(request);
      const { client, secret } = await clients().create(metadata, clientId ? { clientId, by } : { by });
      return reply.code(201).send({ client: clientView(client), ...(secret ? { client_secret: secret } : {}) });
    },
  );

  admin.get<{ Params: { client_id: string } }>(
    '/clients/:client_id',
    { schema: { params: idParams } },
    async (request) => {
      const client = await clients().find(request.params.client_id);
      if (!client) throw new OAuthError('not_found', `no such client: ${request.params.client_id}`);
      return { client: clientView(client) };
    },
  );

  admin.patch<{ Params: { client_id: string }; Body: Record<string, unknown> }>(
    '/clients/:client_id',
    { schema: { params: idParams, body: metadataBody } },
    async (request) => {
      const id = request.params.client_id;
      const { disabled, client_id: renamed, ...changes } = request.body;
      if (renamed !== undefined && renamed !== id)
        throw new OAuthError('invalid_client_metadata', 'client_id: cannot be changed');
      if (disabled !== undefined && typeof disabled !== 'boolean')
        throw new OAuthError('invalid_client_metadata', 'disabled: must be true or false');
      if (Object.keys(changes).length === 0 && disabled === undefined)
        throw new OAuthError('invalid_request', 'nothing to change');
      let client = await clients().find(id);
      if (!client) throw new OAuthError('not_found', `no such client: ${id}`);
      let secret: string | null = null;
      if (Object.keys(changes).length > 0)
        ({ client, secret } = await clients().update(id, changes, operator(request)));
      if (disabled !== undefined) client = await clients().setDisabled(id, disabled, operator(request));
      return { client: clientView(client), ...(secret ? { client_secret: secret } : {}) };
    },
  );

  admin.delete<{ Params: { client_id: string } }>(
    '/clients/:client_id',
    { schema: { params: idParams } },
    async (request, reply) => {
      if (!(await clients().delete(request.params.client_id, operator(request))))
        throw new OAuthError('not_found', `no such client: ${request.params.client_id}`);
      return reply.code(204).send();
    },
  );

  admin.post<{ Params: { client_id: string } }>(
    '/clients/:client_id/rotate-secret',
    { schema: { params: idParams } },
    async (request) => {
      const { client, secret } = await clients().rotateSecret(request.params.client_id, operator(request));
      return { client_id: client.client_id, client_secret: secret };
    },
  );
}
