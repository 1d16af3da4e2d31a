import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorizationRequestRow } from '../../db/tables/authorization-request.table.js';
import { redirectToSignIn, sessionSatisfies } from '../../handshake/login-request.js';
import { issueBinding } from '../../oauth/browser-binding.js';
import { checkCodeChallenge } from '../../oauth/checks/pkce.js';
import { resolveRedirectUri } from '../../oauth/checks/redirect-uri.js';
import { resolveResources as resolveResourcesFor, type ResourcePolicy } from '../../oauth/checks/resource.js';
import { resolveScopes, type ScopePolicy } from '../../oauth/checks/scope.js';
import { OAuthError, rfcDescription } from '../../oauth/errors.js';
import { generateToken } from '../../oauth/secrets.js';
import { attachSession, createAuthorizationRequest } from '../../repositories/authorization-request.repository.js';
import {
  clientRedirect,
  continueAuthorization,
  finishWithError,
  trustsRedirect,
} from '../../services/authorization-flow.js';
import type { Client } from '../../oauth/client.js';
import { htmlErrorRenderer } from '../interaction/error-page.js';

/** Parameters that RFC 8707 lets a client repeat; any other repeated parameter is refused (RFC 6749 §3.1). */
const REPEATABLE = new Set(['resource']);
const PROMPTS = new Set(['none', 'login', 'consent']);
const MAX = 2048;

type Params = Record<string, string | string[]>;

/** A validated authorization request, ready to store. */
interface Validated {
  client: Client;
  redirectUri: string;
  redirectUriGiven: boolean;
  state: string | null;
  scopes: string[];
  resources: string[];
  codeChallenge: string;
  prompt: string | null;
  maxAge: number | null;
  loginHint: string | null;
  uiLocales: string | null;
}

function single(params: Params, name: string): string | undefined {
  const value = params[name];
  if (Array.isArray(value))
    throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`, { redirectable: true });
  // RFC 6749 §3.1: a parameter without a value is treated as omitted.
  if (value === undefined || value === '') return undefined;
  if (value.length > MAX)
    throw new OAuthError('invalid_request', `parameter ${name} is too long`, { redirectable: true });
  return value;
}

/** Steps 1-2 (never redirected): the client and its redirect URI. */
async function clientAndRedirect(
  app: FastifyInstance,
  params: Params,
): Promise<{ client: Client; redirectUri: string; given: boolean }> {
  const notRedirectable = (fn: () => string | undefined) => {
    try {
      return fn();
    } catch (err) {
      throw err instanceof OAuthError ? new OAuthError(err.error, err.description) : err;
    }
  };
  const clientId = notRedirectable(() => single(params, 'client_id'));
  if (clientId === undefined) throw new OAuthError('invalid_request', 'client_id is required');
  const { client, problem } = await app.clients.resolveForAuthorization(clientId);
  // draft-ietf-oauth-client-id-metadata-document-02 §5.1: a client_id URL whose document cannot be used
  // aborts the request, on a page saying why (the redirect URI is not trusted).
  if (problem) throw new OAuthError('invalid_client', `client ${clientId}: ${problem}`, { status: 400 });
  if (!client || client.disabled_at) throw new OAuthError('invalid_request', 'unknown or disabled client');
  const requested = notRedirectable(() => single(params, 'redirect_uri'));
  return { client, redirectUri: resolveRedirectUri(client, requested), given: requested !== undefined };
}

/** Steps 3+ (redirected to the now-validated redirect URI): everything else, in RFC 6749 §4.1.1 order. */
function validateRest(
  params: Params,
  client: Client,
  scopePolicy: ScopePolicy,
  resources: ResourcePolicy,
): Omit<Validated, 'client' | 'redirectUri' | 'redirectUriGiven' | 'state'> {
  const redirectable = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof OAuthError) throw new OAuthError(err.error, err.description, { redirectable: true });
      throw err;
    }
  };
  for (const [name, value] of Object.entries(params)) {
    if (Array.isArray(value) && !REPEATABLE.has(name))
      throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`, { redirectable: true });
  }
  const responseType = single(params, 'response_type');
  if (responseType === undefined)
    throw new OAuthError('invalid_request', 'response_type is required', { redirectable: true });
  if (responseType !== 'code')
    throw new OAuthError('unsupported_response_type', 'only response_type=code is supported', { redirectable: true });
  if (!client.grant_types.includes('authorization_code')) {
    throw new OAuthError('unauthorized_client', 'this client may not use the authorization code grant', {
      redirectable: true,
    });
  }
  // RFC 9101 request objects and RFC 9126 pushed requests are not supported.
  if (single(params, 'request') !== undefined || single(params, 'request_uri') !== undefined) {
    throw new OAuthError('invalid_request', 'request objects are not supported', { redirectable: true });
  }
  const codeChallenge = checkCodeChallenge(single(params, 'code_challenge'), single(params, 'code_challenge_method'));
  let scopes: string[] = [];
  redirectable(() => {
    scopes = resolveScopes(single(params, 'scope'), client, scopePolicy);
  });
  const raw = params.resource;
  const requestedResources = (raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]).filter((r) => r !== '');
  if (requestedResources.length > 16)
    throw new OAuthError('invalid_request', 'too many resource parameters', { redirectable: true });
  let resolvedResources: string[] = [];
  redirectable(() => {
    resolvedResources = resolveResourcesFor(requestedResources, client, resources);
  });
  const promptValue = single(params, 'prompt');
  const prompts = promptValue === undefined ? [] : promptValue.split(' ').filter(Boolean);
  // OIDC Core §3.1.2.1 allows a list, but none/login/consent are mutually exclusive in practice.
  if (prompts.length > 1 || prompts.some((p) => !PROMPTS.has(p))) {
    throw new OAuthError('invalid_request', 'prompt must be one of none, login or consent', { redirectable: true });
  }
  const maxAgeValue = single(params, 'max_age');
  if (maxAgeValue !== undefined && !/^\d{1,9}$/.test(maxAgeValue))
    throw new OAuthError('invalid_request', 'max_age must be a non-negative integer', { redirectable: true });
  return {
    scopes,
    resources: resolvedResources,
    codeChallenge,
    prompt: prompts[0] ?? null,
    maxAge: maxAgeValue === undefined ? null : Number(maxAgeValue),
    loginHint: single(params, 'login_hint') ?? null,
    uiLocales: single(params, 'ui_locales') ?? null,
  };
}

function redirectError(
  reply: FastifyReply,
  issuer: string,
  target: { redirect_uri: string; state: string | null },
  err: OAuthError,
): FastifyReply {
  return reply
    .code(303)
    .header(
      'location',
      clientRedirect(target, issuer, { error: err.error, error_description: rfcDescription(err.description) }),
    )
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
}

const paramSchema = {
  type: 'object',
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
} as const;

/** GET and POST /authorize: validates, stores the pending request, then signs in (host handshake), consents, and returns a code. */
export default async function authorizeRoute(app: FastifyInstance): Promise<void> {
  const { config } = app;
  const { scopes: scopePolicy, resources } = config.policy;

  async function handle(request: FastifyRequest, reply: FastifyReply, params: Params): Promise<FastifyReply> {
    reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
    const { client, redirectUri, given } = await clientAndRedirect(app, params);
    let state: string | null = null;
    let rest: ReturnType<typeof validateRest>;
    try {
      state = single(params, 'state') ?? null;
      rest = validateRest(params, client, scopePolicy, resources);
    } catch (err) {
      if (!(err instanceof OAuthError) || !err.redirectable) throw err;
      if (!trustsRedirect(client)) throw new OAuthError(err.error, err.description, { status: err.status });
      return redirectError(reply, config.issuer, { redirect_uri: redirectUri, state }, err);
    }

    const pending: AuthorizationRequestRow = await createAuthorizationRequest(app.database.db, {
      id: generateToken(),
      client_id: client.client_id,
      redirect_uri: redirectUri,
      redirect_uri_given: given,
      state,
      scopes: rest.scopes,
      resources: rest.resources,
      code_challenge: rest.codeChallenge,
      prompt: rest.prompt,
      max_age: rest.maxAge,
      login_hint: rest.loginHint,
      ui_locales: rest.uiLocales,
      binding_hash: issueBinding(request, reply, config),
      session_hash: null,
      expires_at: new Date(Date.now() + config.flow.requestTtl * 1000),
      answered_at: null,
      completed_at: null,
    });

    const session = await app.sessions.current(request);
    // prompt=login asks for a new sign-in: a session that existed before this request never satisfies it.
    if (session && pending.prompt !== 'login' && sessionSatisfies(session, pending, new Date())) {
      await attachSession(app.database.db, pending.id, session.idHash);
      return continueAuthorization(app, reply, { ...pending, session_hash: session.idHash }, session);
    }
    // OIDC Core §3.1.2.1: prompt=none never shows a page; without a usable session the answer is login_required.
    if (pending.prompt === 'none') {
      return finishWithError(app, reply, pending, new OAuthError('login_required', 'the user is not signed in'));
    }
    if (!config.handshake.signInUrl)
      throw new OAuthError('temporarily_unavailable', 'sign-in is not configured (SIGN_IN_URL)', { status: 503 });
    return redirectToSignIn(app, reply, pending, client);
  }

  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };
  app.get<{ Querystring: Params }>(
    '/authorize',
    { schema: { querystring: paramSchema }, config: routeConfig },
    (request, reply) => handle(request, reply, request.query),
  );
  app.post<{ Body: Params }>(
    '/authorize',
    {
      schema: { body: paramSchema },
      config: routeConfig,
      preValidation: async (request) => {
        const media = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
        if (media !== 'application/x-www-form-urlencoded')
          throw new OAuthError('invalid_request', 'the request body must be application/x-www-form-urlencoded', {
            status: 415,
          });
      },
    },
    (request, reply) => handle(request, reply, request.body ?? {}),
  );
}
