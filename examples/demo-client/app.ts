import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type JWTPayload, createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { errorPage, sessionPage, signedOutPage, startPage } from './pages.js';

/**
 * A tiny OAuth client of Gatehouse for the demo: authorization code + PKCE (S256) with a resource
 * indicator, as a public client; then it calls the resource server with the access token, and can refresh
 * and revoke. Tokens stay on the server (in memory), the browser holds only a random session id.
 *
 * With `openid` in its scope it is also an OpenID Connect relying party: it sends a nonce and checks it in
 * the ID token, signs the user out everywhere through Gatehouse's end_session_endpoint (RP-Initiated
 * Logout 1.0), and ends its own sessions when Gatehouse POSTs a logout token to /backchannel-logout
 * (Back-Channel Logout 1.0).
 */

export interface DemoClientOptions {
  /** Gatehouse's ISSUER, as the browser reaches it (for /authorize, and the `iss` check of RFC 9207). */
  issuer: string;
  /** Where this server reaches Gatehouse's /token and /revoke; the issuer by default (differs in a container network). */
  backchannelUrl?: string;
  clientId: string;
  /** Registered with the client, e.g. http://127.0.0.1:4003/callback. */
  redirectUri: string;
  /** The API's resource identifier (RFC 8707), one of Gatehouse's RESOURCES. */
  resource: string;
  /** Where this server calls the API; the resource identifier by default. */
  apiUrl?: string;
  scope?: string;
  /**
   * Registered as one of the client's post_logout_redirect_uris: where Gatehouse sends the browser after
   * "Sign out everywhere". `/signed-out` on the redirect URI's origin by default.
   */
  postLogoutRedirectUri?: string;
  logger?: boolean;
}

interface Tokens {
  accessToken: string;
  refreshToken: string | null;
  scope: string;
  /** Seconds; null when the response gave no lifetime (expires_in is only RECOMMENDED, RFC 6749 §5.1). */
  expiresAt: number | null;
  sub: string;
  /** The ID token's claims when the scope had `openid` (kept from the last response that carried one). */
  idTokenClaims: Record<string, unknown> | null;
  /** The last ID token itself: sent back as id_token_hint when signing out (RP-Initiated Logout §2). */
  idToken: string | null;
}

/**
 * Gatehouse could not be reached (refused, timed out), or answered with something that is not an OAuth
 * response (a proxy's HTML error page, a token response without a token): shown to the user as such.
 */
class BackchannelError extends Error {}

const UNREACHABLE = 'Gatehouse could not be reached. Try again in a moment.';
const UNEXPECTED = 'Gatehouse answered with something unexpected. Try again in a moment.';

interface Session {
  tokens: Tokens;
  csrf: string;
  apiStatus: number | null;
  apiBody: string | null;
  message: string | undefined;
}

export const SESSION_COOKIE = 'demo_client_session';
export const STATE_COOKIE = 'demo_client_state';
export const LOGOUT_STATE_COOKIE = 'demo_client_logout_state';
/** Back-Channel Logout 1.0 §2.4: the event a logout token carries. */
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const PENDING_TTL_MS = 10 * 60_000;
const MAX_ENTRIES = 1000;

function safeEqual(a: string, b: string): boolean {
  const hash = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(hash(a), hash(b));
}

function page(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    .send(html);
}

/** Builds the demo client (not yet listening). */
export async function buildDemoClient(options: DemoClientOptions): Promise<FastifyInstance> {
  const issuer = options.issuer.replace(/\/+$/, '');
  const backchannel = (options.backchannelUrl ?? issuer).replace(/\/+$/, '');
  const tokenEndpoint = `${backchannel}/token`;
  const revocationEndpoint = `${backchannel}/revoke`;
  const apiUrl = options.apiUrl ?? options.resource;
  const scope = options.scope ?? 'read';
  const openid = scope.split(' ').includes('openid');
  const postLogoutRedirectUri = options.postLogoutRedirectUri ?? new URL('/signed-out', options.redirectUri).href;
  const secure = issuer.startsWith('https:');
  // Gatehouse's keys, for logout tokens; fetched where this server reaches Gatehouse, cached by jose.
  const gatehouseKeys = createRemoteJWKSet(new URL(`${backchannel}/.well-known/jwks.json`));

  /** state -> PKCE verifier (and OIDC nonce) of an authorization request in flight. */
  const pending = new Map<string, { verifier: string; nonce: string | null; expiresAt: number }>();
  const sessions = new Map<string, Session>();
  /** Logout tokens' jti already acted on, until they expire (Back-Channel Logout §2.6 step 8: no replay). */
  const seenLogoutTokens = new Map<string, number>();

  const app = Fastify({
    logger: options.logger
      ? { serializers: { req: (req) => ({ method: req.method, url: req.url.split('?')[0] }) } }
      : false,
  });
  await app.register(cookie);
  await app.register(formbody);
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    if (err instanceof BackchannelError) {
      request.log.warn({ err }, 'token endpoint failed');
      return page(reply, 502, errorPage('Gatehouse is not answering', err.message));
    }
    if (err.statusCode !== undefined && err.statusCode < 500)
      return page(reply, err.statusCode, errorPage('Bad request', err.message));
    request.log.error({ err }, 'request failed');
    return page(reply, 500, errorPage('Something went wrong', 'Please try again.'));
  });

  function remember<V>(map: Map<string, V>, key: string, value: V): void {
    // Oldest first: a demo keeps a bounded amount in memory.
    if (map.size >= MAX_ENTRIES) map.delete(map.keys().next().value as string);
    map.set(key, value);
  }

  /** A fresh authorization request: state and PKCE (RFC 7636 S256), and the /authorize URL. */
  function newAuthorizationRequest(reply: FastifyReply): string {
    const state = randomBytes(32).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    // OIDC Core §3.1.2.1: a nonce binds the ID token to this request (checked in the ID token, §3.1.3.7).
    const nonce = openid ? randomBytes(32).toString('base64url') : null;
    remember(pending, state, { verifier, nonce, expiresAt: Date.now() + PENDING_TTL_MS });
    // Binds the flow to this browser, so a code injected into another browser is refused (RFC 9700 §4.7).
    reply.setCookie(STATE_COOKIE, state, {
      httpOnly: true,
      sameSite: 'lax',
      secure,
      path: '/',
      maxAge: PENDING_TTL_MS / 1000,
    });
    const url = new URL(`${issuer}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: options.clientId,
      redirect_uri: options.redirectUri,
      scope,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: options.resource,
      ...(nonce ? { nonce } : {}),
    }).toString();
    return url.href;
  }

  function currentSession(request: FastifyRequest): Session | undefined {
    const id = request.cookies[SESSION_COOKIE];
    return id ? sessions.get(id) : undefined;
  }

  /**
   * POSTs a form to Gatehouse as a public client (client_id in the body, no secret). Throws BackchannelError
   * when Gatehouse cannot be reached or does not answer with a JSON object; an OAuth error is a result.
   */
  async function postForm(
    url: string,
    form: Record<string, string>,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ client_id: options.clientId, ...form }),
        signal: AbortSignal.timeout(10_000),
      });
      text = await res.text();
    } catch (err) {
      throw new BackchannelError(UNREACHABLE, { cause: err });
    }
    // RFC 7009 §2.2: a successful revocation may answer 200 with an empty body.
    if (text === '' && res.ok) return { status: res.status, body: {} };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new BackchannelError(UNEXPECTED, { cause: err });
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BackchannelError(UNEXPECTED);
    return { status: res.status, body: body as Record<string, unknown> };
  }

  /** A successful token response (RFC 6749 §5.1), or BackchannelError when it is not one. */
  function tokensFrom(body: Record<string, unknown>, previous?: Tokens, nonce?: string | null): Tokens {
    const accessToken = body.access_token;
    if (
      typeof accessToken !== 'string' ||
      typeof body.token_type !== 'string' ||
      body.token_type.toLowerCase() !== 'bearer'
    ) {
      throw new BackchannelError(UNEXPECTED);
    }
    let claims: ReturnType<typeof decodeJwt>;
    try {
      // Only for display: the client never trusts claims it reads without verifying (the API verifies).
      claims = decodeJwt(accessToken);
    } catch (err) {
      throw new BackchannelError(UNEXPECTED, { cause: err });
    }
    const idTokenClaims = idTokenClaimsOf(body.id_token);
    // OIDC Core §3.1.3.7 step 11: the nonce sent is the nonce in the ID token (a token response to this flow).
    if (nonce && idTokenClaims?.nonce !== nonce) throw new BackchannelError(UNEXPECTED);
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = body.expires_in;
    return {
      accessToken,
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : (previous?.refreshToken ?? null),
      scope: typeof body.scope === 'string' ? body.scope : typeof claims.scope === 'string' ? claims.scope : '',
      expiresAt:
        typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
          ? now + Math.floor(expiresIn)
          : typeof claims.exp === 'number' && Number.isFinite(claims.exp)
            ? claims.exp
            : null,
      sub: String(claims.sub ?? ''),
      idTokenClaims: idTokenClaims ?? previous?.idTokenClaims ?? null,
      idToken: typeof body.id_token === 'string' ? body.id_token : (previous?.idToken ?? null),
    };
  }

  /**
   * An ID token's claims. Received straight from the token endpoint, so the connection vouches for its
   * issuer (OIDC Core §3.1.3.7 step 6 allows TLS server validation in place of the signature); the demo
   * shows the claims and keeps `sid` and `sub` to match logout tokens, which it does verify.
   */
  function idTokenClaimsOf(idToken: unknown): Record<string, unknown> | null {
    if (typeof idToken !== 'string') return null;
    try {
      return decodeJwt(idToken);
    } catch (err) {
      throw new BackchannelError(UNEXPECTED, { cause: err });
    }
  }

  async function callApi(session: Session): Promise<void> {
    try {
      const res = await fetch(apiUrl, {
        headers: { authorization: `Bearer ${session.tokens.accessToken}` },
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      session.apiStatus = res.status;
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // not JSON: shown as it is
      }
      const challenge = res.headers.get('www-authenticate');
      session.apiBody = challenge ? `${shown}\n\nWWW-Authenticate: ${challenge}` : shown;
    } catch (err) {
      session.apiStatus = 0;
      session.apiBody = `the API could not be reached: ${(err as Error).message}`;
    }
  }

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/', async (request, reply) => {
    const session = currentSession(request);
    if (!session) return page(reply, 200, startPage(newAuthorizationRequest(reply)));
    const { tokens } = session;
    const html = sessionPage({
      sub: tokens.sub,
      scope: tokens.scope,
      idTokenClaims: tokens.idTokenClaims,
      accessTokenExpiresAt: tokens.expiresAt,
      hasRefreshToken: tokens.refreshToken !== null,
      apiStatus: session.apiStatus,
      apiBody: session.apiBody,
      message: session.message,
      csrf: session.csrf,
      canSignOutEverywhere: tokens.idToken !== null,
    });
    session.message = undefined;
    return page(reply, 200, html);
  });

  const callbackQuery = {
    type: 'object',
    properties: {
      code: { type: 'string', maxLength: 512 },
      state: { type: 'string', maxLength: 512 },
      iss: { type: 'string', maxLength: 2048 },
      error: { type: 'string', maxLength: 256 },
      error_description: { type: 'string', maxLength: 1024 },
    },
  } as const;

  app.get<{ Querystring: { code?: string; state?: string; iss?: string; error?: string; error_description?: string } }>(
    '/callback',
    { schema: { querystring: callbackQuery } },
    async (request, reply) => {
      const { code, state, iss, error, error_description: description } = request.query;
      const expectedState = request.cookies[STATE_COOKIE];
      const flow = state ? pending.get(state) : undefined;
      if (!state || !expectedState || !safeEqual(state, expectedState) || !flow || flow.expiresAt < Date.now()) {
        return page(
          reply,
          400,
          errorPage('Sign-in failed', 'The sign-in answer does not belong to this browser or has expired.'),
        );
      }
      pending.delete(state);
      reply.clearCookie(STATE_COOKIE, { path: '/' });
      // RFC 9207: the answer must come from the authorization server we sent the user to (mix-up defence).
      if (iss !== issuer)
        return page(
          reply,
          400,
          errorPage('Sign-in failed', 'The sign-in answer did not come from the expected issuer.'),
        );
      if (error)
        return page(
          reply,
          400,
          errorPage('Sign-in was not completed', `${error}${description ? `: ${description}` : ''}`),
        );
      if (!code) return page(reply, 400, errorPage('Sign-in failed', 'The answer carries no code.'));

      const { status, body } = await postForm(tokenEndpoint, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: options.redirectUri,
        code_verifier: flow.verifier,
        resource: options.resource,
      });
      if (status !== 200) {
        if (typeof body.error !== 'string') throw new BackchannelError(UNEXPECTED);
        return page(
          reply,
          400,
          errorPage(
            'The token request failed',
            `${body.error}: ${typeof body.error_description === 'string' ? body.error_description : ''}`,
          ),
        );
      }
      const session: Session = {
        tokens: tokensFrom(body, undefined, flow.nonce),
        csrf: randomBytes(32).toString('base64url'),
        apiStatus: null,
        apiBody: null,
        message: 'Signed in.',
      };
      await callApi(session);
      const id = randomBytes(32).toString('base64url');
      remember(sessions, id, session);
      reply.setCookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
      return reply.code(303).header('location', '/').send();
    },
  );

  const csrfBody = {
    type: 'object',
    properties: { csrf: { type: 'string', maxLength: 100 } },
    required: ['csrf'],
  } as const;

  /** The signed-in actions: CSRF-checked, then back to / (POST-redirect-GET). */
  function action(path: string, run: (session: Session, id: string) => Promise<void>): void {
    app.post<{ Body: { csrf: string } }>(path, { schema: { body: csrfBody } }, async (request, reply) => {
      const id = request.cookies[SESSION_COOKIE];
      const session = id ? sessions.get(id) : undefined;
      if (!id || !session || !safeEqual(session.csrf, request.body.csrf))
        return reply.code(303).header('location', '/').send();
      try {
        await run(session, id);
      } catch (err) {
        if (!(err instanceof BackchannelError)) throw err;
        // Signed in already: say so on the page rather than leave it.
        request.log.warn({ err }, 'Gatehouse request failed');
        session.message = err.message;
      }
      return reply.code(303).header('location', '/').send();
    });
  }

  action('/call', async (session) => {
    await callApi(session);
  });

  action('/refresh', async (session) => {
    if (!session.tokens.refreshToken) {
      session.message = 'There is no refresh token.';
      return;
    }
    // The refresh token rotates: the old one is dead after this.
    const { status, body } = await postForm(tokenEndpoint, {
      grant_type: 'refresh_token',
      refresh_token: session.tokens.refreshToken,
      resource: options.resource,
    });
    if (status !== 200) {
      if (typeof body.error !== 'string') throw new BackchannelError(UNEXPECTED);
      session.message = `Refresh refused: ${body.error} (${typeof body.error_description === 'string' ? body.error_description : ''})`;
      return;
    }
    session.tokens = tokensFrom(body, session.tokens);
    session.message = 'Tokens refreshed; the refresh token was rotated.';
    await callApi(session);
  });

  action('/revoke', async (session) => {
    if (!session.tokens.refreshToken) {
      session.message = 'There is no refresh token to revoke.';
      return;
    }
    const { status } = await postForm(revocationEndpoint, {
      token: session.tokens.refreshToken,
      token_type_hint: 'refresh_token',
    });
    session.message =
      status === 200
        ? 'Refresh token revoked (RFC 7009): refreshing now fails. The access token still works until it expires, because the API checks it offline.'
        : `Revocation failed (HTTP ${status}).`;
  });

  action('/forget', async (_session, id) => {
    sessions.delete(id);
  });

  /**
   * "Sign out everywhere": forgets this session and sends the browser to Gatehouse's end_session_endpoint
   * (RP-Initiated Logout 1.0 §2) with the ID token as id_token_hint, the registered post-logout URI and a
   * state. Gatehouse ends its session and POSTs logout tokens to every app that session signed in to.
   */
  app.post<{ Body: { csrf: string } }>('/sign-out', { schema: { body: csrfBody } }, async (request, reply) => {
    const id = request.cookies[SESSION_COOKIE];
    const session = id ? sessions.get(id) : undefined;
    if (!id || !session || !safeEqual(session.csrf, request.body.csrf))
      return reply.code(303).header('location', '/').send();
    sessions.delete(id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    const state = randomBytes(32).toString('base64url');
    reply.setCookie(LOGOUT_STATE_COOKIE, state, {
      httpOnly: true,
      sameSite: 'lax',
      secure,
      path: '/',
      maxAge: PENDING_TTL_MS / 1000,
    });
    const url = new URL(`${issuer}/sign-out`);
    url.search = new URLSearchParams({
      ...(session.tokens.idToken ? { id_token_hint: session.tokens.idToken } : {}),
      client_id: options.clientId,
      post_logout_redirect_uri: postLogoutRedirectUri,
      state,
    }).toString();
    return reply.code(303).header('location', url.href).send();
  });

  /** Where Gatehouse sends the browser back after signing out (§3): the state says it was this browser's request. */
  app.get<{ Querystring: { state?: string } }>(
    new URL(postLogoutRedirectUri).pathname,
    { schema: { querystring: { type: 'object', properties: { state: { type: 'string', maxLength: 512 } } } } },
    async (request, reply) => {
      const expected = request.cookies[LOGOUT_STATE_COOKIE];
      const state = request.query.state;
      reply.clearCookie(LOGOUT_STATE_COOKIE, { path: '/' });
      if (!state || !expected || !safeEqual(state, expected)) return reply.code(303).header('location', '/').send();
      return page(reply, 200, signedOutPage(newAuthorizationRequest(reply)));
    },
  );

  /** Back-Channel Logout §2.8: 400 with an OAuth-style error body, never cached. */
  function logoutRefused(reply: FastifyReply, description: string): FastifyReply {
    return reply
      .code(400)
      .header('cache-control', 'no-store')
      .send({ error: 'invalid_request', error_description: description });
  }

  /**
   * POST /backchannel-logout, the client's backchannel_logout_uri: validates the logout token as
   * Back-Channel Logout 1.0 §2.6 says, then ends this client's sessions it names: those of its `sid`, or
   * every session of its `sub` when it has no `sid` (§2.7).
   */
  app.post<{ Body: { logout_token?: string } }>(
    '/backchannel-logout',
    {
      schema: {
        body: {
          type: 'object',
          properties: { logout_token: { type: 'string', maxLength: 8192 } },
        },
      },
    },
    async (request, reply) => {
      const token = request.body?.logout_token;
      if (!token) return logoutRefused(reply, 'logout_token is missing');
      let claims: JWTPayload;
      try {
        // §2.6 steps 2-5: signed by the issuer's key (no alg none), iss, aud = this client, iat; RFC 8725
        // §3.11: the explicit type tells it from Gatehouse's other JWTs.
        ({ payload: claims } = await jwtVerify(token, gatehouseKeys, {
          issuer,
          audience: options.clientId,
          typ: 'logout+jwt',
          requiredClaims: ['iat', 'jti'],
        }));
      } catch {
        return logoutRefused(reply, 'the logout token is not valid');
      }
      const events = claims.events as Record<string, unknown> | undefined;
      // §2.6 step 5-7: the backchannel-logout event, a sub or a sid, and no nonce (it is not an ID token).
      if (typeof events !== 'object' || events === null || typeof events[BACKCHANNEL_LOGOUT_EVENT] !== 'object')
        return logoutRefused(reply, 'the logout token has no back-channel logout event');
      if (claims.nonce !== undefined) return logoutRefused(reply, 'a logout token carries no nonce');
      const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
      const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
      if (!sid && !sub) return logoutRefused(reply, 'the logout token names no sid or sub');
      const now = Date.now();
      for (const [jti, until] of seenLogoutTokens) if (until < now) seenLogoutTokens.delete(jti);
      if (seenLogoutTokens.has(claims.jti!)) return logoutRefused(reply, 'the logout token was already used');
      remember(seenLogoutTokens, claims.jti!, typeof claims.exp === 'number' ? claims.exp * 1000 : now + 600_000);

      let ended = 0;
      for (const [id, session] of sessions) {
        const seen = session.tokens.idTokenClaims;
        const matches = sid ? seen?.sid === sid : session.tokens.sub === sub;
        if (matches) {
          sessions.delete(id);
          ended += 1;
        }
      }
      request.log.info({ ended }, 'back-channel logout');
      return reply.code(200).header('cache-control', 'no-store').send();
    },
  );

  return app;
}
