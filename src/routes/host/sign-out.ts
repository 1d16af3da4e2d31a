import type { FastifyInstance } from 'fastify';
import { normaliseParams, requireForm } from '../../http/form.js';

const bodySchema = {
  type: 'object',
  required: ['sign_out'],
  properties: { sign_out: { type: 'string', minLength: 1, maxLength: 8192 } },
} as const;

/**
 * POST /host/sign-out: the host app's server tells Gatehouse a user signed out there (docs/handshake.md,
 * "Signing out"), with a signed `sign_out` message as a form parameter. A back-channel call rather than a
 * browser redirect: it needs no Gatehouse cookie (it names the user and optionally the session), so it
 * works when the browser is gone, from another site, or for a sign-out the host decides on its own (a
 * password change, a disabled account); and nothing the browser carries can be replayed into it.
 * Answers 200 `{ sessions_ended, logout_tokens }`, or 400 invalid_request naming the failed check.
 */
export default async function hostSignOutRoute(app: FastifyInstance): Promise<void> {
  app.post<{ Body: { sign_out: string } }>(
    '/host/sign-out',
    {
      config: app.rateLimited,
      schema: { body: bodySchema },
      preValidation: async (request) => {
        requireForm(request);
        normaliseParams(request, new Set());
      },
    },
    async (request, reply) => {
      const result = await app.hostSignOut.accept(request.body.sign_out);
      if (result.logoutTokens > 0) app.logoutDeliveries.kick();
      request.log.info({ sessions: result.sessions }, 'the host app signed a user out');
      return reply
        .header('cache-control', 'no-store')
        .send({ sessions_ended: result.sessions, logout_tokens: result.logoutTokens });
    },
  );
}
