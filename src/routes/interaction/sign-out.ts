import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { applyCookies } from '../../http/outcome.js';
import { seeOther } from '../../http/redirect.js';
import { OAuthError } from '../../oauth/errors.js';
import { sendPage } from '../../plugins/external/view.js';
import { postLogoutRedirect, type SignOutParams } from '../../services/sessions/post-logout.js';
import { htmlErrorRenderer } from './error-page.js';

const MAX = 2048;

const paramsSchema = {
  type: 'object',
  properties: {
    client_id: { type: 'string', maxLength: 512 },
    post_logout_redirect_uri: { type: 'string', maxLength: MAX },
    state: { type: 'string', maxLength: MAX },
  },
} as const;

type Params = SignOutParams;

/** RFC 6749 §3.1: no parameter twice. */
function refuseRepeated(params: unknown): void {
  for (const [name, value] of Object.entries((params ?? {}) as Record<string, unknown>)) {
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated`);
  }
}

/** GET/POST /sign-out: ends the Gatehouse browser session (row revoked, cookie cleared). */
export default async function signOutRoute(app: FastifyInstance): Promise<void> {
  async function handle(request: FastifyRequest, reply: FastifyReply, params: Params): Promise<FastifyReply> {
    const { cookie } = await app.sessions.end(request.cookies[app.sessions.cookieName]);
    if (cookie) applyCookies(reply, [cookie]);
    const location = await postLogoutRedirect(app.clients, params);
    if (location) return seeOther(reply, location);
    return sendPage(reply, 'signed-out', { continueUrl: null });
  }

  /**
   * Logout CSRF: a request another site sent (Fetch Metadata says cross-site) gets a question, not a
   * sign-out: a page whose button posts the same parameters back from Gatehouse's own origin. That covers
   * links (GET) and auto-submitting forms (POST): a cross-site POST carries no SameSite=Lax session cookie,
   * but its answer could still clear the cookie. Links from the host on a sibling subdomain are same-site.
   */
  async function askFirst(reply: FastifyReply, params: Params): Promise<FastifyReply> {
    const fields = (['client_id', 'post_logout_redirect_uri', 'state'] as const)
      .filter((name) => typeof params[name] === 'string')
      .map((name) => ({ name, value: params[name] as string }));
    // The confirmed POST may end in a redirect to the registered post-logout URI: CSP form-action must allow it.
    const location = await postLogoutRedirect(app.clients, params);
    return sendPage(
      reply.header('cache-control', 'no-store'),
      'sign-out-confirm',
      { action: `${app.pageContext.basePath}/sign-out`, fields },
      200,
      {
        formRedirects: location ? [location] : [],
      },
    );
  }

  const crossSite = (request: FastifyRequest): boolean => request.headers['sec-fetch-site'] === 'cross-site';
  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };
  app.get<{ Querystring: Params }>(
    '/sign-out',
    // No HEAD twin: a HEAD request (a link checker, a prefetch) must not end a session.
    {
      config: routeConfig,
      exposeHeadRoute: false,
      schema: { querystring: paramsSchema },
      preValidation: async (request) => refuseRepeated(request.query),
    },
    async (request, reply) =>
      crossSite(request) ? askFirst(reply, request.query) : handle(request, reply, request.query),
  );
  app.post<{ Body: Params }>(
    '/sign-out',
    {
      config: routeConfig,
      schema: { body: paramsSchema },
      preValidation: async (request) => refuseRepeated(request.body),
    },
    async (request, reply) =>
      crossSite(request) ? askFirst(reply, request.body ?? {}) : handle(request, reply, request.body ?? {}),
  );
}
