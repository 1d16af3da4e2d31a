import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { applyCookies } from '../../http/outcome.js';
import { seeOther } from '../../http/redirect.js';
import { OAuthError } from '../../oauth/errors.js';
import { sendPage } from '../../plugins/external/view.js';
import {
  planSignOut,
  SIGN_OUT_PARAMS,
  type SignOutDeps,
  type SignOutParams,
} from '../../services/sessions/post-logout.js';
import { htmlErrorRenderer } from './error-page.js';

const MAX = 2048;

const paramsSchema = {
  type: 'object',
  properties: {
    id_token_hint: { type: 'string', minLength: 1, maxLength: 8192 },
    client_id: { type: 'string', maxLength: 512 },
    post_logout_redirect_uri: { type: 'string', maxLength: MAX },
    state: { type: 'string', maxLength: MAX },
    logout_hint: { type: 'string', maxLength: MAX },
    ui_locales: { type: 'string', maxLength: 256 },
  },
} as const;

type Params = SignOutParams;

/** RFC 6749 §3.1: no parameter twice. */
function refuseRepeated(params: unknown): void {
  for (const [name, value] of Object.entries((params ?? {}) as Record<string, unknown>)) {
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated`);
  }
}

/**
 * GET/POST /sign-out, the end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0): ends the
 * Gatehouse browser session (row revoked, cookie cleared; the clients it signed in to get back-channel
 * logout tokens), then redirects to a registered post_logout_redirect_uri or shows the signed-out page.
 */
export default async function signOutRoute(app: FastifyInstance): Promise<void> {
  const deps: SignOutDeps = {
    clients: app.clients,
    jwks: () => app.keys.jwks(),
    issuer: app.issuer,
    clock: app.clock,
    clockSkew: app.config.tokens.clockSkew,
    sessionAbsoluteTtl: app.config.flow.sessionAbsoluteTtl,
  };

  async function signOut(
    request: FastifyRequest,
    reply: FastifyReply,
    params: Params,
    crossSite: boolean,
  ): Promise<FastifyReply> {
    const cookieValue = request.cookies[app.sessions.cookieName];
    const plan = await planSignOut(deps, params, await app.sessions.current(cookieValue));
    /*
     * Logout CSRF: RP-Initiated Logout §6 calls a logout request without a valid id_token_hint a means of
     * denial of service and asks the OP to get the user's confirmation first (RFC 9700 §4.4 treats
     * cross-site requests alike). A request another site sent (Fetch Metadata says cross-site) gets a
     * question, not a sign-out, unless its id_token_hint names this browser's user (and session): then the
     * RP that signed this user in asked, and the user is sent back without a stop. Links from the host on a
     * sibling subdomain are same-site and sign out at once, as before.
     */
    if (crossSite && !plan.hintMatchesSession) return askFirst(reply, params, plan.redirect);
    const { cookie } = await app.sessions.end(cookieValue);
    if (cookie) applyCookies(reply, [cookie]);
    app.logoutDeliveries.kick();
    if (plan.redirect) return seeOther(reply, plan.redirect);
    return sendPage(reply, 'signed-out', { continueUrl: null });
  }

  /**
   * The question: a page whose button posts the same parameters back from Gatehouse's own origin. That
   * covers links (GET) and auto-submitting forms (POST): a cross-site POST carries no SameSite=Lax session
   * cookie, but its answer could still clear the cookie.
   */
  async function askFirst(reply: FastifyReply, params: Params, location: string | null): Promise<FastifyReply> {
    const fields = SIGN_OUT_PARAMS.filter((name) => typeof params[name] === 'string').map((name) => ({
      name,
      value: params[name] as string,
    }));
    return sendPage(
      reply.header('cache-control', 'no-store'),
      'sign-out-confirm',
      { action: `${app.pageContext.basePath}/sign-out`, fields },
      200,
      {
        // The confirmed POST may end in a redirect to the registered post-logout URI: CSP form-action must allow it.
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
    async (request, reply) => signOut(request, reply, request.query, crossSite(request)),
  );
  app.post<{ Body: Params }>(
    '/sign-out',
    {
      config: routeConfig,
      schema: { body: paramsSchema },
      preValidation: async (request) => refuseRepeated(request.body),
    },
    async (request, reply) => signOut(request, reply, request.body ?? {}, crossSite(request)),
  );
}
