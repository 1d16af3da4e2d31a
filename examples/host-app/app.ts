import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { SignJWT, jwtVerify } from 'jose';
import { errorPage, homePage, signInPage } from './pages.js';

/**
 * The HOST side of Gatehouse's sign-in handshake (docs/handshake.md): a small app with its own users and
 * its own sign-in page. Gatehouse sends the browser to GET /login with a signed login_request; this app
 * signs the user in and sends the browser back with a signed login_response. Copy it and replace the
 * user list and the cookie session with your own.
 */

export interface HostUser {
  username: string;
  /** Plaintext, for the demo only: a real user store keeps a slow hash (see authenticate). */
  password: string;
  /** The stable user id Gatehouse puts in `sub` (never an email that can change). */
  sub: string;
  name: string;
  email: string;
}

export interface HostAppOptions {
  /** Gatehouse's ISSUER, exactly: the required `iss` of login_request and the `aud` of login_response. */
  gatehouseIssuer: string;
  /** Gatehouse's HOST_ID: the required `aud` of login_request and the `iss` of login_response. */
  hostId: string;
  /** Gatehouse's HANDSHAKE_SECRET: both JWTs are HS256 under it. */
  handshakeSecret: string;
  /** The users who can sign in; DEMO_USERS by default. */
  users?: HostUser[];
  /** Mark cookies Secure: set this when the app is served over https. */
  secureCookies?: boolean;
  /**
   * Tell Gatehouse when a user signs out here (POST /host/sign-out with a signed `sign_out` message,
   * docs/handshake.md): their Gatehouse sessions end and the apps they signed in to get back-channel
   * logout tokens. Off by default.
   */
  signOutAtGatehouse?: boolean;
  /** How the sign-out message is sent; the global fetch by default. */
  fetch?: typeof fetch;
  logger?: boolean;
}

/** The demo's users. */
export const DEMO_USERS: readonly HostUser[] = Object.freeze([
  {
    username: 'alice',
    password: 'alice-password',
    sub: 'user-1001',
    name: 'Alice Liddell',
    email: 'alice@example.com',
  },
  { username: 'bob', password: 'bob-password', sub: 'user-1002', name: 'Bob Builder', email: 'bob@example.com' },
]);

/** RFC 8725 §3.11 explicit types: what Gatehouse signs, and what it requires of our answer. */
export const LOGIN_REQUEST_TYP = 'login-request+jwt';
export const LOGIN_RESPONSE_TYP = 'login-response+jwt';
/** The explicit type of the host's sign-out message (docs/handshake.md, "Signing out"). */
export const SIGN_OUT_TYP = 'sign-out+jwt';

/** Cookie names. Cookies are not port-scoped, so they must not clash with Gatehouse's on the same host. */
export const SESSION_COOKIE = 'host_session';
export const CSRF_COOKIE = 'host_csrf';

/**
 * A cookie's name as set: with secure cookies, `__Host-` prefixed. A browser accepts a `__Host-` cookie only
 * with Secure, Path=/ and no Domain, so no sibling subdomain can set one for us (RFC 6265bis §4.1.3.2);
 * signing stops it forging a value, the prefix also stops it planting one it got from us.
 */
export function cookieName(name: string, secure: boolean): string {
  return secure ? `__Host-${name}` : name;
}

/** Gatehouse accepts at most 300 s between iat and exp; two minutes leaves room for clock skew. */
const RESPONSE_TTL = '2m';
const SESSION_TTL_SECONDS = 8 * 3600;
const CLOCK_TOLERANCE_SECONDS = 30;

/** The claims of a verified login_request this app uses. */
interface LoginRequest {
  jti: string;
  return_to: string;
  client_id?: string;
  client_name?: string;
  prompt?: string;
  max_age?: number;
  login_hint?: string;
}

/** The host's own session: who signed in, and when (seconds). */
interface HostSession {
  user: HostUser;
  authTime: number;
}

/** A request this app refuses with a plain error page. */
class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

const INVALID_REQUEST = 'This sign-in request is invalid or has expired. Go back to the application and start again.';

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time string comparison (hashing first makes the lengths equal). */
function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/**
 * Who the sign-in page says is asking. A client_id that is an https URL belongs to a Client ID Metadata
 * Document client, whose client_name is whatever its own document says ("Your Bank"): name the host of the
 * URL instead, which the client cannot choose (CIMD draft §8.5). Registered clients keep their name.
 */
export function requesterOf(loginRequest: { client_id?: string; client_name?: string }): string | undefined {
  const clientId = loginRequest.client_id;
  // http too: a development Gatehouse may accept one, and its name is just as self-declared.
  if (clientId !== undefined && /^https?:\/\//i.test(clientId) && URL.canParse(clientId)) return new URL(clientId).host;
  return loginRequest.client_name;
}

function page(reply: FastifyReply, status: number, html: string): FastifyReply {
  return (
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      // The login_request is in our URL: keep it out of Referer headers.
      .header('referrer-policy', 'no-referrer')
      .header('x-content-type-options', 'nosniff')
      // No form-action: browsers apply it to every redirect after a form POST, and the sign-in POST is
      // redirected to Gatehouse and from there on to whichever client asked, an origin we cannot list.
      .header(
        'content-security-policy',
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
      )
      .send(html)
  );
}

/** Builds the host app (not yet listening). */
export async function buildHostApp(options: HostAppOptions): Promise<FastifyInstance> {
  // Gatehouse's issuer never ends in "/" (it canonicalises it), so neither may ours.
  const issuer = options.gatehouseIssuer.replace(/\/+$/, '');
  const returnTo = `${issuer}/sign-in/complete`;
  const handshakeKey = new TextEncoder().encode(options.handshakeSecret);
  const users = options.users ?? DEMO_USERS;
  const secure = options.secureCookies ?? false;
  const sessionCookie = cookieName(SESSION_COOKIE, secure);
  const csrfCookie = cookieName(CSRF_COOKIE, secure);
  const hint = options.users ? undefined : 'Demo users: alice / alice-password, bob / bob-password.';

  const app = Fastify({
    logger: options.logger
      ? {
          // URLs carry login_request / login_response: log paths only.
          serializers: { req: (req) => ({ method: req.method, url: req.url.split('?')[0] }) },
        }
      : false,
  });
  // Signs the session and CSRF cookies; a new key per process, so a restart signs everyone out (fine for a
  // demo; a real host keeps its key in its secret store).
  await app.register(cookie, { secret: randomBytes(32).toString('base64url') });
  await app.register(formbody);

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
    if (err instanceof PageError) return page(reply, err.status, errorPage(err.title, err.message));
    if (err.validation || (err.statusCode !== undefined && err.statusCode < 500)) {
      return page(
        reply,
        err.statusCode && err.statusCode !== 500 ? err.statusCode : 400,
        errorPage('Bad request', INVALID_REQUEST),
      );
    }
    request.log.error({ err }, 'request failed');
    return page(reply, 500, errorPage('Something went wrong', 'Please try again.'));
  });
  app.setNotFoundHandler((_request, reply) => page(reply, 404, errorPage('Not found', 'There is no page here.')));

  /** Verifies a login_request exactly as docs/handshake.md says; anything else is refused. */
  async function verifyLoginRequest(token: string): Promise<LoginRequest> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, handshakeKey, {
        algorithms: ['HS256'], // never `none`, never an algorithm we did not choose
        typ: LOGIN_REQUEST_TYP,
        issuer,
        audience: options.hostId,
        requiredClaims: ['jti', 'iat', 'exp', 'return_to'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch {
      throw new PageError(400, 'Invalid sign-in request', INVALID_REQUEST);
    }
    // Only ever send the answer (a signed statement of who the user is) back to our own Gatehouse.
    if (payload.return_to !== returnTo || typeof payload.jti !== 'string')
      throw new PageError(400, 'Invalid sign-in request', INVALID_REQUEST);
    const optionalString = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return {
      jti: payload.jti,
      return_to: payload.return_to,
      client_id: optionalString(payload.client_id),
      client_name: optionalString(payload.client_name),
      prompt: optionalString(payload.prompt),
      max_age: typeof payload.max_age === 'number' ? payload.max_age : undefined,
      login_hint: optionalString(payload.login_hint),
    };
  }

  /** Signs the answer and sends the browser back to Gatehouse (303, so it arrives as a GET). */
  async function answer(
    reply: FastifyReply,
    loginRequest: LoginRequest,
    claims: Record<string, unknown>,
  ): Promise<FastifyReply> {
    const loginResponse = await new SignJWT({ request: loginRequest.jti, ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: LOGIN_RESPONSE_TYP })
      .setIssuer(options.hostId)
      .setAudience(issuer)
      .setIssuedAt()
      .setExpirationTime(RESPONSE_TTL)
      .sign(handshakeKey);
    const location = new URL(loginRequest.return_to);
    location.searchParams.set('login_response', loginResponse);
    return reply
      .code(303)
      .header('location', location.href)
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .send();
  }

  /**
   * Tells Gatehouse that `sub` signed out here: a sign_out message (HS256 under the handshake secret, typ
   * sign-out+jwt, a fresh jti, a minute to live) POSTed server to server. Without a `sid` it ends every
   * Gatehouse session of the user ("sign out everywhere"). A failure is logged and does not stop our own
   * sign-out: the user asked to leave.
   */
  async function signOutAtGatehouse(request: FastifyRequest, sub: string): Promise<void> {
    const signOut = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'HS256', typ: SIGN_OUT_TYP })
      .setIssuer(options.hostId)
      .setAudience(issuer)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(handshakeKey);
    try {
      const res = await (options.fetch ?? fetch)(`${issuer}/host/sign-out`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ sign_out: signOut }).toString(),
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) request.log.warn({ status: res.status }, 'Gatehouse refused the sign-out message');
    } catch (err) {
      request.log.warn({ err }, 'the sign-out message could not be sent to Gatehouse');
    }
  }

  function signedInClaims(session: HostSession): Record<string, unknown> {
    const { user } = session;
    return { sub: user.sub, auth_time: session.authTime, amr: ['pwd'], claims: { name: user.name, email: user.email } };
  }

  function currentSession(request: FastifyRequest): HostSession | null {
    const raw = request.cookies[sessionCookie];
    if (!raw) return null;
    const unsigned = request.unsignCookie(raw);
    if (!unsigned.valid || unsigned.value === null) return null;
    try {
      const { sub, authTime } = JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8')) as {
        sub: unknown;
        authTime: unknown;
      };
      const user = users.find((u) => u.sub === sub);
      if (!user || typeof authTime !== 'number' || Date.now() / 1000 - authTime > SESSION_TTL_SECONDS) return null;
      return { user, authTime };
    } catch {
      return null;
    }
  }

  function startSession(reply: FastifyReply, user: HostUser): HostSession {
    const authTime = Math.floor(Date.now() / 1000);
    const value = Buffer.from(JSON.stringify({ sub: user.sub, authTime })).toString('base64url');
    reply.setCookie(sessionCookie, value, {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure,
      path: '/',
      maxAge: SESSION_TTL_SECONDS,
    });
    return { user, authTime };
  }

  /** prompt=login and max_age (OpenID Connect Core §3.1.2.1) ask for a sign-in newer than the session's. */
  function needsFreshSignIn(loginRequest: LoginRequest, session: HostSession): boolean {
    if (loginRequest.prompt === 'login') return true;
    return loginRequest.max_age !== undefined && Date.now() / 1000 - session.authTime > loginRequest.max_age;
  }

  /** The token in the CSRF cookie, if the cookie is there and carries this app's signature. */
  function csrfCookieToken(request: FastifyRequest): string | null {
    const raw = request.cookies[csrfCookie];
    if (!raw) return null;
    const unsigned = request.unsignCookie(raw);
    return unsigned.valid && unsigned.value !== null && /^[A-Za-z0-9_-]{43}$/.test(unsigned.value)
      ? unsigned.value
      : null;
  }

  /**
   * Signed double-submit CSRF token: a random token in a cookie signed with the app's cookie secret, which
   * every form must echo in its `csrf` field. Unsigned, a sibling subdomain could set the cookie (cookies
   * are not isolated by subdomain) to a value of its choosing and post that value; it cannot sign one.
   */
  function csrfToken(request: FastifyRequest, reply: FastifyReply): string {
    const existing = csrfCookieToken(request);
    if (existing) return existing;
    const token = randomBytes(32).toString('base64url');
    reply.setCookie(csrfCookie, token, { signed: true, httpOnly: true, sameSite: 'lax', secure, path: '/' });
    return token;
  }

  function checkCsrf(request: FastifyRequest, given: string): void {
    const expected = csrfCookieToken(request);
    if (!expected || !safeEqual(expected, given)) {
      throw new PageError(403, 'Form expired', 'This form has expired. Go back to the application and start again.');
    }
  }

  /**
   * Constant-time password check; an unknown username costs the same as a wrong password.
   *
   * DEMO ONLY: these passwords are plaintext in memory. A real host stores a slow, salted hash per user
   * (scrypt, e.g. node:crypto scrypt with a random 16-byte salt, or argon2id), compares hashes with
   * timingSafeEqual, and rate-limits attempts per account and per client address (e.g. @fastify/rate-limit
   * on POST /login) so that passwords cannot be guessed at speed.
   */
  function authenticate(username: string, password: string): HostUser | null {
    let found: HostUser | null = null;
    for (const user of users) {
      const nameMatches = safeEqual(user.username, username);
      const passwordMatches = safeEqual(user.password, password);
      if (nameMatches && passwordMatches) found = user;
    }
    return found;
  }

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/', async (request, reply) => {
    const session = currentSession(request);
    // Gatehouse's connected-apps page: where the user sees and revokes the apps they allowed (docs/connected-apps.md).
    const connectedApps = `${issuer}/account/apps`;
    return page(reply, 200, homePage(session ? session.user : null, csrfToken(request, reply), connectedApps));
  });

  const loginQuerySchema = {
    type: 'object',
    properties: { login_request: { type: 'string', minLength: 1, maxLength: 8192 } },
    required: ['login_request'],
  } as const;

  app.get<{ Querystring: { login_request: string } }>(
    '/login',
    { schema: { querystring: loginQuerySchema } },
    async (request, reply) => {
      const token = request.query.login_request;
      const loginRequest = await verifyLoginRequest(token);
      const session = currentSession(request);
      // Already signed in here, and the client asks for nothing newer: answer at once, no page.
      if (session && !needsFreshSignIn(loginRequest, session))
        return answer(reply, loginRequest, signedInClaims(session));
      // prompt=none must never show UI (OpenID Connect Core §3.1.2.6).
      if (loginRequest.prompt === 'none') return answer(reply, loginRequest, { error: 'login_required' });
      const username = loginRequest.login_hint ?? '';
      return page(
        reply,
        200,
        signInPage({
          loginRequest: token,
          csrf: csrfToken(request, reply),
          requester: requesterOf(loginRequest),
          username,
          error: undefined,
          hint,
        }),
      );
    },
  );

  const loginBodySchema = {
    type: 'object',
    properties: {
      login_request: { type: 'string', minLength: 1, maxLength: 8192 },
      csrf: { type: 'string', maxLength: 100 },
      username: { type: 'string', maxLength: 200 },
      password: { type: 'string', maxLength: 1000 },
      action: { type: 'string', enum: ['sign-in', 'cancel'] },
    },
    required: ['login_request', 'csrf'],
  } as const;

  type LoginBody = {
    login_request: string;
    csrf: string;
    username?: string;
    password?: string;
    action?: 'sign-in' | 'cancel';
  };

  app.post<{ Body: LoginBody }>('/login', { schema: { body: loginBodySchema } }, async (request, reply) => {
    const body = request.body;
    checkCsrf(request, body.csrf);
    // The form carried the login_request back to us: verify it again (it may have expired meanwhile).
    const loginRequest = await verifyLoginRequest(body.login_request);
    if (body.action === 'cancel')
      return answer(reply, loginRequest, {
        error: 'access_denied',
        error_description: 'The user cancelled the sign-in',
      });

    const user = authenticate(body.username ?? '', body.password ?? '');
    if (!user) {
      return page(
        reply,
        401,
        signInPage({
          loginRequest: body.login_request,
          csrf: body.csrf,
          requester: requesterOf(loginRequest),
          username: body.username ?? '',
          error: 'Incorrect username or password.',
          hint,
        }),
      );
    }
    return answer(reply, loginRequest, signedInClaims(startSession(reply, user)));
  });

  app.post<{ Body: { csrf: string } }>(
    '/logout',
    {
      schema: {
        body: { type: 'object', properties: { csrf: { type: 'string', maxLength: 100 } }, required: ['csrf'] },
      },
    },
    async (request, reply) => {
      checkCsrf(request, request.body.csrf);
      const session = currentSession(request);
      if (session && options.signOutAtGatehouse) await signOutAtGatehouse(request, session.user.sub);
      // Without signOutAtGatehouse this signs out of the host app only (send the browser to Gatehouse's
      // /sign-out to end that session too).
      // The same attributes as when set: a browser ignores a `__Host-` cookie (even an expired one) without Secure.
      reply.clearCookie(sessionCookie, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
      return reply.code(303).header('location', '/').send();
    },
  );

  return app;
}
