import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/index.js';
import type { AuthorizationRequestRow } from '../../db/tables/authorization-request.table.js';
import { type HostKeys, loadHostKeys } from '../../handshake/host-keys.js';
import { SIGN_IN_COMPLETE_PATH, sessionSatisfies } from '../../handshake/login-request.js';
import { type LoginResponse, type SignedInAnswer, verifyLoginResponse } from '../../handshake/login-response.js';
import { hasBinding } from '../../oauth/browser-binding.js';
import { OAuthError } from '../../oauth/errors.js';
import { findLiveAuthorizationRequest } from '../../repositories/authorization-request.repository.js';
import { continueAuthorization, finishWithError } from '../../services/authorization-flow.js';
import { htmlErrorRenderer } from './error-page.js';

/** Longest login_response accepted: a signed JWT with a modest `claims` object fits easily. */
export const MAX_LOGIN_RESPONSE_LENGTH = 8192;
const FORM = 'application/x-www-form-urlencoded';

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

const DEFAULT_DESCRIPTIONS = {
  access_denied: 'the user or the host app declined the sign-in',
  login_required: 'the user is not signed in at the host app',
} as const;

/** RFC 6749 §3.1: a parameter must not appear twice (two answers in one request could be confused). */
function refuseRepeated(params: unknown): void {
  const value = (params as Record<string, unknown> | undefined)?.login_response;
  if (Array.isArray(value)) throw new OAuthError('invalid_request', 'parameter login_response is repeated');
}

/** The host posts an HTML form; no other body type is accepted. */
function requireForm(request: FastifyRequest): void {
  const media = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (media !== FORM) throw new OAuthError('unsupported_media_type', `the request body must be ${FORM}`);
}

/** The pending request the answer names: live (not expired, not completed) and not yet answered. */
async function pendingRequestFor(app: FastifyInstance, answer: LoginResponse): Promise<AuthorizationRequestRow> {
  const pending = await findLiveAuthorizationRequest(app.database.db, answer.request);
  if (!pending)
    throw new OAuthError(
      'invalid_request',
      'the sign-in request this answer names is unknown, has expired or is already finished; start again from the application',
    );
  return pending;
}

/** DESIGN step 3: only the browser that started the request may bring its answer back. */
function requireSameBrowser(request: FastifyRequest, config: Readonly<Config>, pending: AuthorizationRequestRow): void {
  if (!hasBinding(request, config, pending.binding_hash)) {
    throw new OAuthError(
      'invalid_request',
      'this sign-in was started in another browser (or its cookie has expired); start again from the application',
    );
  }
}

function alreadyAnswered(): OAuthError {
  return new OAuthError(
    'invalid_request',
    'this sign-in answer has already been used; start again from the application',
  );
}

/** OpenID Connect Core §3.1.2.1: prompt=login and max_age need a fresh sign-in; else the request fails with login_required. */
function isFreshEnough(answer: SignedInAnswer, pending: AuthorizationRequestRow, config: Readonly<Config>): boolean {
  return sessionSatisfies({ authTime: answer.authTime }, pending, new Date(), config.tokens.clockSkew);
}

/**
 * GET/POST /sign-in/complete: the host's signed answer comes back here (docs/handshake.md). Until the
 * answer is verified and tied to this browser's pending request, every failure is an error page, never a
 * redirect: nothing yet says which client it could go to.
 */
export default async function signInCompleteRoute(app: FastifyInstance): Promise<void> {
  const { config } = app;
  const hostKeys: HostKeys | null = await loadHostKeys(config);
  const verifyOptions = {
    issuer: app.issuer,
    hostId: config.handshake.hostId,
    clockSkew: config.tokens.clockSkew,
    maxAge: config.handshake.responseMaxAge,
  };

  async function handle(request: FastifyRequest, reply: FastifyReply, token: string): Promise<FastifyReply> {
    if (!hostKeys) throw new OAuthError('invalid_request', 'sign-in is not configured on this server');
    const answer = await verifyLoginResponse(token, hostKeys, { ...verifyOptions, now: new Date() });
    const pending = await pendingRequestFor(app, answer);
    requireSameBrowser(request, config, pending);
    if (pending.answered_at !== null) throw alreadyAnswered();
    if (answer.kind === 'error') {
      return finishWithError(
        app,
        reply,
        pending,
        new OAuthError(answer.error, answer.description ?? DEFAULT_DESCRIPTIONS[answer.error]),
      );
    }
    if (!isFreshEnough(answer, pending, config)) {
      const why = pending.prompt === 'login' ? 'prompt=login' : `max_age=${pending.max_age}`;
      return finishWithError(
        app,
        reply,
        pending,
        new OAuthError('login_required', `the host app did not re-authenticate the user as ${why} requires`),
      );
    }
    const previous = await app.sessions.current(request);
    const created = await app.sessions.createAnswering(
      reply,
      { sub: answer.sub, authTime: answer.authTime, amr: answer.amr, acr: answer.acr, claims: answer.claims },
      pending.id,
    );
    // Lost a race with a concurrent copy of the same answer: nothing was stored, no cookie was set.
    if (!created) throw alreadyAnswered();
    // The new session replaces the browser's old one (same cookie name); the old row must not outlive it.
    if (previous && previous.idHash !== created.session.idHash) await app.sessions.revoke(previous.idHash);
    return continueAuthorization(app, reply, created.pending, created.session);
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
        requireForm(request);
        refuseRepeated(request.body);
      },
    },
    async (request, reply) => handle(request, reply, request.body.login_response),
  );
}
