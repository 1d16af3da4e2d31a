import type { FastifyInstance } from 'fastify';
import { requireForm } from '../../http/form.js';
import { sendOutcome } from '../../http/outcome.js';
import { requireSameOrigin } from '../../http/same-origin.js';
import { negotiateLocale } from '../../lib/i18n.js';
import { OAuthError } from '../../oauth/errors.js';
import { ACCOUNT_DESTINATIONS } from '../../services/account/account-sign-in.js';
import { htmlErrorRenderer } from '../interaction/error-page.js';

/** Client ids are at most a URL long (client-id documents); the bound only stops abuse. */
const CLIENT_ID = { type: 'string', minLength: 1, maxLength: 2048 } as const;

const querySchema = {
  type: 'object',
  properties: { revoked: CLIENT_ID },
} as const;

const bodySchema = {
  type: 'object',
  required: ['client_id', 'csrf'],
  properties: { client_id: CLIENT_ID, csrf: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/** RFC 6749 §3.1 (the rule every Gatehouse form follows): no parameter twice. */
function refuseRepeated(params: unknown): void {
  for (const [name, value] of Object.entries((params ?? {}) as Record<string, unknown>)) {
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated`);
  }
}

/**
 * GET /account/apps: the signed-in user's connected apps (docs/connected-apps.md); without a session the
 * browser goes through the host's sign-in and comes back. POST /account/apps/revoke: revokes one app.
 */
export default async function connectedAppsRoutes(app: FastifyInstance): Promise<void> {
  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };
  const path = ACCOUNT_DESTINATIONS.apps;
  const action = `${app.pageContext.basePath}${path}/revoke`;
  const issuerOrigin = new URL(app.issuer).origin;

  app.get<{ Querystring: { revoked?: string } }>(
    path,
    // No HEAD twin: a HEAD (a link checker) must not start a sign-in or set its cookie.
    {
      config: routeConfig,
      exposeHeadRoute: false,
      schema: { querystring: querySchema },
      preValidation: async (request) => refuseRepeated(request.query),
    },
    async (request, reply) => {
      const { revoked } = request.query;
      // The page is in the browser's language (no client asks, so no ui_locales), else English.
      const locale = negotiateLocale(null, request.headers['accept-language']);
      const outcome = await app.connectedApps.show(request.cookies, {
        locale,
        ...(revoked === undefined ? {} : { revoked }),
      });
      return sendOutcome(reply, outcome, { action });
    },
  );

  app.post<{ Body: { client_id: string; csrf: string } }>(
    `${path}/revoke`,
    {
      config: routeConfig,
      schema: { body: bodySchema },
      preValidation: async (request) => {
        requireSameOrigin(request, issuerOrigin);
        requireForm(request);
        refuseRepeated(request.body);
      },
    },
    async (request, reply) => {
      const { client_id: clientId, csrf } = request.body;
      const { outcome, logoutTokens } = await app.connectedApps.revoke(
        { clientId, csrf, address: request.ip },
        request.cookies,
      );
      // Deliver the back-channel logout tokens now rather than at the next poll.
      if (logoutTokens > 0) app.logoutDeliveries.kick();
      return sendOutcome(reply, outcome);
    },
  );
}
