import type { FastifyInstance } from 'fastify';

/** The path parameter of one user's routes. Also the OpenAPI document's schema. */
export const subParams = {
  type: 'object',
  required: ['sub'],
  properties: { sub: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;
/** The optional client a revocation is limited to. Also the OpenAPI document's schema. */
export const clientQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { client_id: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const;

/**
 * A user's grants, by the `sub` the host app gave Gatehouse: what each client holds (remembered consent,
 * live refresh-token chains), and revoking them, for when the host deletes or disables a user
 * (everything, sessions included) or the user disconnects one app (`?client_id=`).
 */
export default async function adminUserRoutes(admin: FastifyInstance): Promise<void> {
  admin.get<{ Params: { sub: string } }>('/users/:sub/grants', { schema: { params: subParams } }, async (request) => ({
    sub: request.params.sub,
    grants: await admin.gatehouse.userGrants.list(request.params.sub),
  }));

  admin.delete<{ Params: { sub: string }; Querystring: { client_id?: string } }>(
    '/users/:sub/grants',
    { schema: { params: subParams, querystring: clientQuery } },
    async (request) => {
      const { sub } = request.params;
      const clientId = request.query.client_id;
      const revoked = await admin.gatehouse.userGrants.revoke(sub, clientId === undefined ? {} : { clientId }, {
        actor: 'admin',
        address: request.ip,
        via: 'admin_api',
      });
      // Counts under names the log redaction leaves alone (it hides anything named like a token or code).
      const counts = {
        refresh: revoked.refresh_tokens,
        codes: revoked.authorization_codes,
        consents: revoked.consents,
        sessions: revoked.sessions,
      };
      request.log.info({ sub, client_id: clientId ?? null, revoked: counts }, "revoked a user's grants");
      // Ended sessions queued back-channel logout tokens: deliver them now rather than at the next poll.
      if (revoked.sessions > 0) admin.gatehouse.logoutDeliveries.kick();
      return { sub, ...(clientId === undefined ? {} : { client_id: clientId }), revoked };
    },
  );

  // Signs the user out of Gatehouse everywhere (every session ends; the clients they signed in to get
  // back-channel logout tokens); the user's grants to clients stay.
  admin.delete<{ Params: { sub: string } }>(
    '/users/:sub/sessions',
    { schema: { params: subParams } },
    async (request) => {
      const { sub } = request.params;
      const ended = await admin.gatehouse.userGrants.endSessions(sub, {
        actor: 'admin',
        address: request.ip,
        via: 'admin_api',
      });
      if (ended.logout_tokens > 0) admin.gatehouse.logoutDeliveries.kick();
      request.log.info({ sub, sessions: ended.sessions }, "ended a user's sessions");
      return { sub, ...ended };
    },
  );
}
