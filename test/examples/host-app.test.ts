import { randomBytes } from 'node:crypto';
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import t from 'tap';
import { CSRF_COOKIE, SESSION_COOKIE, buildHostApp, cookieName } from '../../examples/host-app/app.js';
import { HOST_ID, HOST_SECRET } from '../fixtures/host.js';
import { buildTestApp } from '../helper.js';
import { InjectBrowser, hiddenField } from './support.js';
import { pkce } from '../kit/pkce.js';
import { ISSUER } from '../kit/issuer.js';

const HOST_ORIGIN = 'http://127.0.0.1:4001';
const RESOURCE = 'https://api.example.com';
const REDIRECT = 'http://127.0.0.1:53123/callback';
const ENV = {
  SIGN_IN_URL: `${HOST_ORIGIN}/login`,
  HOST_ID,
  HANDSHAKE_SECRET: HOST_SECRET,
  SCOPES: '{"read":"Read your data"}',
  RESOURCES: RESOURCE,
};
const secret = new TextEncoder().encode(HOST_SECRET);

async function setup(t: Tap.Test, clientName = 'Example client') {
  const gatehouse = await buildTestApp(t, ENV);
  const host = await buildHostApp({ gatehouseIssuer: ISSUER, hostId: HOST_ID, handshakeSecret: HOST_SECRET });
  t.teardown(() => host.close());
  const { client } = await gatehouse.clientAdmin.create({
    name: clientName,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
  });
  const browser = new InjectBrowser({ [ISSUER]: gatehouse, [HOST_ORIGIN]: host });
  return { gatehouse, host, browser, clientId: client.client_id };
}

function authorizeUrl(clientId: string, challenge: string, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'read',
    state: 'st-1',
    resource: RESOURCE,
    ...extra,
  });
  return `${ISSUER}/authorize?${q}`;
}

/** A login_request as Gatehouse signs one, with overrides for what a test breaks. */
async function loginRequest(
  overrides: {
    claims?: Record<string, unknown>;
    header?: Record<string, unknown>;
    key?: Uint8Array;
    exp?: number;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: ISSUER,
    aud: HOST_ID,
    jti: randomBytes(16).toString('base64url'),
    iat: now,
    exp: overrides.exp ?? now + 600,
    return_to: `${ISSUER}/sign-in/complete`,
    client_id: 'c1',
    client_name: 'Example client',
    ...overrides.claims,
  };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'login-request+jwt', ...overrides.header })
    .sign(overrides.key ?? secret);
}

function unsecured(payload: Record<string, unknown>): string {
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'login-request+jwt' })}.${part(payload)}.`;
}

async function loginResponseOf(location: string | string[] | undefined) {
  const url = new URL(String(location));
  const jwt = url.searchParams.get('login_response')!;
  const { payload, protectedHeader } = await jwtVerify(jwt, secret, {
    algorithms: ['HS256'],
    issuer: HOST_ID,
    audience: ISSUER,
  });
  return { url, payload, protectedHeader };
}

t.test('refuses login_requests it must not act on, with a plain 400 page', async (t) => {
  const host = await buildHostApp({ gatehouseIssuer: ISSUER, hostId: HOST_ID, handshakeSecret: HOST_SECRET });
  t.teardown(() => host.close());
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, string]> = [
    ['signed with another secret (forged)', await loginRequest({ key: new TextEncoder().encode(`x${HOST_SECRET}`) })],
    ['expired', await loginRequest({ claims: { iat: now - 1200 }, exp: now - 600 })],
    ['for another host (aud)', await loginRequest({ claims: { aud: 'another-host' } })],
    ['from another issuer (iss)', await loginRequest({ claims: { iss: 'http://127.0.0.1:9999' } })],
    ['without the login-request+jwt typ', await loginRequest({ header: { typ: 'JWT' } })],
    ['a login_response replayed as a request (typ)', await loginRequest({ header: { typ: 'login-response+jwt' } })],
    [
      'alg none',
      unsecured({
        iss: ISSUER,
        aud: HOST_ID,
        jti: 'j',
        iat: now,
        exp: now + 600,
        return_to: `${ISSUER}/sign-in/complete`,
      }),
    ],
    ['return_to elsewhere', await loginRequest({ claims: { return_to: 'https://attacker.example/steal' } })],
    [
      'return_to on the issuer but not /sign-in/complete',
      await loginRequest({ claims: { return_to: `${ISSUER}/consent` } }),
    ],
    ['without jti', await loginRequest({ claims: { jti: undefined } })],
    ['not a JWT', 'not-a-jwt'],
  ];
  for (const [name, token] of cases) {
    const res = await host.inject({ method: 'GET', url: `/login?login_request=${encodeURIComponent(token)}` });
    t.equal(res.statusCode, 400, name);
    t.match(res.headers['content-type'], /^text\/html/, `${name}: an HTML page`);
    t.notOk(res.headers.location, `${name}: no redirect`);
    t.match(res.body, /invalid or has expired/, `${name}: says why`);
  }
  const missing = await host.inject({ method: 'GET', url: '/login' });
  t.equal(missing.statusCode, 400, 'no login_request');
  t.match(missing.headers['content-type'], /^text\/html/);
  const repeated = await host.inject({ method: 'GET', url: `/login?login_request=a&login_request=b` });
  t.equal(repeated.statusCode, 400, 'a repeated login_request');
});

t.test('the sign-in form yields a login_response Gatehouse accepts, through to an access token', async (t) => {
  const { gatehouse, browser, clientId } = await setup(t);
  const { verifier, challenge } = pkce();

  const start = await browser.get(authorizeUrl(clientId, challenge, { login_hint: 'alice' }));
  t.equal(start.statusCode, 303, start.body);
  t.match(start.headers.location, new RegExp(`^${HOST_ORIGIN}/login\\?login_request=`));

  const form = await browser.get(String(start.headers.location));
  t.equal(form.statusCode, 200, form.body);
  t.match(form.headers['content-type'], /^text\/html; charset=utf-8/);
  t.equal(form.headers['referrer-policy'], 'no-referrer', 'the login_request in the URL is not leaked by Referer');
  t.notMatch(
    form.headers['content-security-policy'],
    /form-action/,
    'the sign-in POST is redirected on to Gatehouse and the client',
  );
  t.match(form.headers['content-security-policy'], /frame-ancestors 'none'/);
  t.match(form.body, /<label for="username">/);
  t.match(form.body, /<input id="username" name="username"[^>]*value="alice"/, 'login_hint pre-fills the username');
  t.match(form.body, /<label for="password">/);
  t.match(form.body, /<input id="password" name="password" type="password"/);
  t.match(form.body, /<button[^>]*type="submit"[^>]*>Sign in<\/button>/);
  t.match(form.body, /<button[^>]*value="cancel"[^>]*>Cancel<\/button>/);
  t.match(form.body, /Example client/, 'names the client');
  const csrf = hiddenField(form.body, 'csrf');
  const carried = hiddenField(form.body, 'login_request');
  t.equal(
    carried,
    new URL(String(start.headers.location)).searchParams.get('login_request'),
    'the login_request rides along in a hidden field',
  );
  t.match(
    browser.jar.cookies.get(CSRF_COOKIE),
    new RegExp(`^${csrf}\\.[A-Za-z0-9+/%_-]+$`),
    'double-submit CSRF cookie, signed',
  );

  const wrong = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: carried,
    csrf,
    username: 'alice',
    password: 'bob-password',
    action: 'sign-in',
  });
  t.equal(wrong.statusCode, 401);
  t.match(wrong.body, /role="alert">Incorrect username or password\./);
  t.notOk(browser.jar.cookies.has(SESSION_COOKIE), 'no session after a wrong password');
  const unknown = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: carried,
    csrf,
    username: 'mallory',
    password: 'alice-password',
    action: 'sign-in',
  });
  t.equal(unknown.statusCode, 401, 'an unknown user is refused the same way');

  const signedIn = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: carried,
    csrf,
    username: 'alice',
    password: 'alice-password',
    action: 'sign-in',
  });
  t.equal(signedIn.statusCode, 303, signedIn.body);
  const setCookie = ([] as string[]).concat(signedIn.headers['set-cookie'] as string | string[]);
  const sessionCookie = setCookie.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  t.ok(sessionCookie, 'host session set');
  t.match(sessionCookie, /HttpOnly/);
  t.match(sessionCookie, /SameSite=Lax/);
  const answer = await loginResponseOf(signedIn.headers.location);
  t.equal(`${answer.url.origin}${answer.url.pathname}`, `${ISSUER}/sign-in/complete`);
  t.equal(answer.protectedHeader.typ, 'login-response+jwt');
  t.equal(answer.protectedHeader.alg, 'HS256');
  t.equal(answer.payload.sub, 'user-1001');
  t.equal(answer.payload.request, decodeLoginRequestJti(carried));
  t.same(answer.payload.amr, ['pwd']);
  t.same(answer.payload.claims, { name: 'Alice Liddell', email: 'alice@example.com' });
  t.equal(answer.payload.exp! - answer.payload.iat!, 120, 'two minutes');
  t.type(answer.payload.auth_time, 'number');

  const complete = await browser.get(String(signedIn.headers.location));
  t.equal(complete.statusCode, 303, `Gatehouse accepts the answer: ${complete.body}`);
  t.match(complete.headers.location, /\/consent\?request=/);
  const consent = await browser.get(new URL(String(complete.headers.location), ISSUER).href);
  t.equal(consent.statusCode, 200, consent.body);
  const allowed = await browser.post(`${ISSUER}/consent`, {
    request: new URL(String(complete.headers.location), ISSUER).searchParams.get('request')!,
    csrf: hiddenField(consent.body, 'csrf'),
    decision: 'allow',
  });
  t.equal(allowed.statusCode, 303, allowed.body);
  const code = new URL(String(allowed.headers.location)).searchParams.get('code')!;
  const token = await gatehouse.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      client_id: clientId,
      redirect_uri: REDIRECT,
    }).toString(),
  });
  t.equal(token.statusCode, 200, token.body);
  const jwks = createLocalJWKSet((await gatehouse.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
  const { payload } = await jwtVerify(token.json().access_token, jwks, {
    issuer: ISSUER,
    audience: RESOURCE,
    typ: 'at+jwt',
  });
  t.equal(payload.sub, 'user-1001', 'the access token is for the user the host signed in');

  const home = await browser.get(`${HOST_ORIGIN}/`);
  t.match(home.body, /Signed in as <strong>Alice Liddell<\/strong>/);
});

function decodeLoginRequestJti(jwt: string): string {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')).jti;
}

t.test('a host session answers at once; prompt=login asks again', async (t) => {
  const { browser, clientId } = await setup(t);
  const first = await browser.get(authorizeUrl(clientId, pkce().challenge));
  const form = await browser.get(String(first.headers.location));
  const signedIn = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: hiddenField(form.body, 'login_request'),
    csrf: hiddenField(form.body, 'csrf'),
    username: 'bob',
    password: 'bob-password',
    action: 'sign-in',
  });
  t.equal(signedIn.statusCode, 303);

  // Another sign-in (Gatehouse has no session of its own yet, the host has one): no page.
  const again = await browser.get(authorizeUrl(clientId, pkce().challenge));
  t.equal(again.statusCode, 303);
  const quick = await browser.get(String(again.headers.location));
  t.equal(quick.statusCode, 303, 'answered without a form');
  const answer = await loginResponseOf(quick.headers.location);
  t.equal(answer.payload.sub, 'user-1002');
  t.equal(
    answer.payload.request,
    decodeLoginRequestJti(new URL(String(again.headers.location)).searchParams.get('login_request')!),
  );

  // prompt=login forces a fresh sign-in even with a session.
  const relogin = await browser.get(
    String((await browser.get(authorizeUrl(clientId, pkce().challenge, { prompt: 'login' }))).headers.location),
  );
  t.equal(relogin.statusCode, 200, 'the form again');
  t.match(relogin.body, /Sign in<\/button>/);

  // max_age already exceeded by the session: the form again.
  const stale = await browser.get(
    `${HOST_ORIGIN}/login?login_request=${await loginRequest({ claims: { max_age: -1 } })}`,
  );
  t.equal(stale.statusCode, 200, 'max_age exceeded: the form');
  const fresh = await browser.get(
    `${HOST_ORIGIN}/login?login_request=${await loginRequest({ claims: { max_age: 3600 } })}`,
  );
  t.equal(fresh.statusCode, 303, 'max_age satisfied: answered at once');

  // Signing out of the host app ends its session.
  const home = await browser.get(`${HOST_ORIGIN}/`);
  const out = await browser.post(`${HOST_ORIGIN}/logout`, { csrf: hiddenField(home.body, 'csrf') });
  t.equal(out.statusCode, 303);
  t.notOk(browser.jar.cookies.has(SESSION_COOKIE), 'session cookie cleared');
  t.match((await browser.get(`${HOST_ORIGIN}/`)).body, /Nobody is signed in/);
});

t.test('prompt=none without a session answers login_required at once', async (t) => {
  const host = await buildHostApp({ gatehouseIssuer: ISSUER, hostId: HOST_ID, handshakeSecret: HOST_SECRET });
  t.teardown(() => host.close());
  const token = await loginRequest({ claims: { prompt: 'none', jti: 'req-none' } });
  const res = await host.inject({ method: 'GET', url: `/login?login_request=${token}` });
  t.equal(res.statusCode, 303, 'no UI');
  const answer = await loginResponseOf(res.headers.location);
  t.equal(answer.protectedHeader.typ, 'login-response+jwt');
  t.equal(answer.payload.error, 'login_required');
  t.equal(answer.payload.request, 'req-none');
  t.notOk(answer.payload.sub);
});

t.test('Cancel answers access_denied, which Gatehouse passes to the client', async (t) => {
  const { browser, clientId } = await setup(t);
  const start = await browser.get(authorizeUrl(clientId, pkce().challenge));
  const form = await browser.get(String(start.headers.location));
  const cancelled = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: hiddenField(form.body, 'login_request'),
    csrf: hiddenField(form.body, 'csrf'),
    action: 'cancel',
  });
  t.equal(cancelled.statusCode, 303);
  const answer = await loginResponseOf(cancelled.headers.location);
  t.equal(answer.payload.error, 'access_denied');
  t.notOk(browser.jar.cookies.has(SESSION_COOKIE));
  const back = await browser.get(String(cancelled.headers.location));
  t.equal(back.statusCode, 303, back.body);
  const callback = new URL(String(back.headers.location));
  t.equal(`${callback.origin}${callback.pathname}`, REDIRECT);
  t.equal(callback.searchParams.get('error'), 'access_denied');
  t.equal(callback.searchParams.get('state'), 'st-1');
});

t.test(
  'a URL client_id (a Client ID Metadata Document client) is named by its host, not its self-declared name',
  async (t) => {
    const host = await buildHostApp({ gatehouseIssuer: ISSUER, hostId: HOST_ID, handshakeSecret: HOST_SECRET });
    t.teardown(() => host.close());
    const form = async (claims: Record<string, unknown>) =>
      (await host.inject({ method: 'GET', url: `/login?login_request=${await loginRequest({ claims })}` })).body;

    const cimd = await form({ client_id: 'https://app.example.com/oauth/client.json', client_name: 'Your Bank' });
    t.match(cimd, /to continue to <strong>app\.example\.com<\/strong>/, 'the host of the client_id URL (CIMD §8.5)');
    t.notMatch(cimd, /Your Bank/, 'not the name the client chose for itself');
    const withPort = await form({ client_id: 'https://app.example.com:8443/client', client_name: 'Your Bank' });
    t.match(withPort, /to continue to <strong>app\.example\.com:8443<\/strong>/, 'a port is part of the identity');
    const idn = await form({ client_id: 'https://b\u00fccher.example/client', client_name: 'Your Bank' });
    t.match(
      idn,
      /to continue to <strong>xn--bcher-kva\.example<\/strong>/,
      'an internationalised host in its ASCII form (no look-alike letters)',
    );
    const registered = await form({ client_id: 'c1', client_name: 'Example client' });
    t.match(registered, /to continue to <strong>Example client<\/strong>/, 'a registered client keeps its name');
  },
);

t.test('secure cookies carry the __Host- prefix, so no sibling subdomain can set them', async (t) => {
  const host = await buildHostApp({
    gatehouseIssuer: ISSUER,
    hostId: HOST_ID,
    handshakeSecret: HOST_SECRET,
    secureCookies: true,
  });
  t.teardown(() => host.close());
  t.equal(cookieName(CSRF_COOKIE, true), '__Host-host_csrf');
  t.equal(cookieName(CSRF_COOKIE, false), 'host_csrf', 'plain http (development): no prefix, which needs Secure');
  const setCookies = (res: { headers: Record<string, unknown> }) =>
    ([] as string[]).concat((res.headers['set-cookie'] as string | string[] | undefined) ?? []);
  const hostCookie = (line: string | undefined, name: string) => {
    t.ok(line, `${name} set`);
    t.match(line, new RegExp(`^__Host-${name}=`), `${name}: prefixed`);
    t.match(line, /; Secure/, `${name}: Secure`);
    t.match(line, /; Path=\/(;|$)/, `${name}: Path=/`);
    t.notMatch(line, /Domain=/i, `${name}: no Domain`);
  };

  const token = await loginRequest();
  const form = await host.inject({ method: 'GET', url: `/login?login_request=${token}` });
  t.equal(form.statusCode, 200);
  const csrfLine = setCookies(form).find((c) => c.startsWith('__Host-host_csrf='));
  hostCookie(csrfLine, 'host_csrf');
  const csrfPair = csrfLine!.split(';')[0]!;
  const csrf = hiddenField(form.body, 'csrf');

  const post = (cookie: string, fields: Record<string, string>) =>
    host.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      payload: new URLSearchParams({ login_request: token, csrf, ...fields }).toString(),
    });
  const unprefixed = await post(`host_csrf=${csrfPair.slice('__Host-host_csrf='.length)}`, {
    username: 'alice',
    password: 'alice-password',
    action: 'sign-in',
  });
  t.equal(unprefixed.statusCode, 403, 'the unprefixed name (which a sibling could set) does not count');
  const signedIn = await post(csrfPair, { username: 'alice', password: 'alice-password', action: 'sign-in' });
  t.equal(signedIn.statusCode, 303, signedIn.body);
  const sessionLine = setCookies(signedIn).find((c) => c.startsWith('__Host-host_session='));
  hostCookie(sessionLine, 'host_session');

  const home = await host.inject({
    method: 'GET',
    url: '/',
    headers: { cookie: `${csrfPair}; ${sessionLine!.split(';')[0]}` },
  });
  t.match(home.body, /Signed in as/);
  const out = await host.inject({
    method: 'POST',
    url: '/logout',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: `${csrfPair}; ${sessionLine!.split(';')[0]}`,
    },
    payload: new URLSearchParams({ csrf: hiddenField(home.body, 'csrf') }).toString(),
  });
  t.equal(out.statusCode, 303);
  const cleared = setCookies(out).find((c) => c.startsWith('__Host-host_session='));
  t.match(cleared, /^__Host-host_session=;/, 'sign-out clears the prefixed cookie');
  t.match(cleared, /; Secure/, 'with Secure, or a browser ignores the clearing');
  t.match(cleared, /; Path=\/(;|$)/);
});

t.test('forms need the CSRF cookie; output is escaped', async (t) => {
  const { browser, host, clientId } = await setup(t, '<script>alert("x")</script> & Co');
  const start = await browser.get(
    authorizeUrl(clientId, pkce().challenge, { login_hint: '"><img src=x onerror=alert(1)>' }),
  );
  const form = await browser.get(String(start.headers.location));
  t.equal(form.statusCode, 200);
  t.notMatch(form.body, /<script>alert/, 'client name escaped');
  t.match(form.body, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; Co/);
  t.notMatch(form.body, /<img/, 'login_hint escaped');

  const forged = await host.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      login_request: hiddenField(form.body, 'login_request'),
      csrf: hiddenField(form.body, 'csrf'),
      username: 'alice',
      password: 'alice-password',
    }).toString(),
  });
  t.equal(forged.statusCode, 403, 'a cross-site POST without the cookie is refused');
  t.notOk(forged.headers.location);
  const mismatched = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: hiddenField(form.body, 'login_request'),
    csrf: 'wrong',
    username: 'alice',
    password: 'alice-password',
  });
  t.equal(mismatched.statusCode, 403);
  // A sibling subdomain can set a cookie for this host (Domain=parent), so a plain double-submit token is
  // no defence against it: the cookie must carry the app's signature.
  const planted = 'p'.repeat(43);
  const tossed = await host.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${CSRF_COOKIE}=${planted}` },
    payload: new URLSearchParams({
      login_request: hiddenField(form.body, 'login_request'),
      csrf: planted,
      username: 'alice',
      password: 'alice-password',
      action: 'sign-in',
    }).toString(),
  });
  t.equal(tossed.statusCode, 403, 'an unsigned CSRF cookie set by someone else is refused');
  const badSignature = await host.inject({
    method: 'POST',
    url: '/login',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: `${CSRF_COOKIE}=${planted}.${'A'.repeat(43)}`,
    },
    payload: new URLSearchParams({
      login_request: hiddenField(form.body, 'login_request'),
      csrf: planted,
      username: 'alice',
      password: 'alice-password',
      action: 'sign-in',
    }).toString(),
  });
  t.equal(badSignature.statusCode, 403, 'a forged signature is refused');
  const fresh = await host.inject({
    method: 'GET',
    url: `/login?login_request=${encodeURIComponent(hiddenField(form.body, 'login_request'))}`,
    headers: { cookie: `${CSRF_COOKIE}=${planted}` },
  });
  t.not(hiddenField(fresh.body, 'csrf'), planted, 'the form never adopts a planted token');
  const badRequest = await browser.post(`${HOST_ORIGIN}/login`, {
    login_request: 'forged',
    csrf: hiddenField(form.body, 'csrf'),
    username: 'alice',
    password: 'alice-password',
  });
  t.equal(badRequest.statusCode, 400, 'the POST verifies the login_request again');
  t.equal(decodeProtectedHeader(hiddenField(form.body, 'login_request')).typ, 'login-request+jwt');
});

t.test(
  'signOutAtGatehouse: signing out at the host ends the user’s Gatehouse sessions with a sign_out message',
  async (t) => {
    const gatehouse = await buildTestApp(t, ENV);
    // The host's fetch, carried to this in-process Gatehouse (the message itself is what is tested).
    const viaInject: typeof fetch = async (input, init) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      const res = await gatehouse.inject({
        method: 'POST',
        url: url.pathname,
        headers: init?.headers as Record<string, string>,
        payload: typeof init?.body === 'string' ? init.body : '',
      });
      return new Response(res.body, { status: res.statusCode });
    };
    const host = await buildHostApp({
      gatehouseIssuer: ISSUER,
      hostId: HOST_ID,
      handshakeSecret: HOST_SECRET,
      signOutAtGatehouse: true,
      fetch: viaInject,
    });
    t.teardown(() => host.close());
    const elsewhere = await gatehouse.sessions.create({ sub: 'user-1001', authTime: new Date() });
    const other = await gatehouse.sessions.create({ sub: 'user-1002', authTime: new Date() });

    const token = await loginRequest();
    const form = await host.inject({ method: 'GET', url: `/login?login_request=${token}` });
    const cookieOf = (res: { headers: Record<string, unknown> }, name: string) =>
      ([] as string[])
        .concat((res.headers['set-cookie'] as string | string[] | undefined) ?? [])
        .find((c) => c.startsWith(`${name}=`))!
        .split(';')[0]!;
    const csrfPair = cookieOf(form, 'host_csrf');
    const signedIn = await host.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfPair },
      payload: new URLSearchParams({
        login_request: token,
        csrf: hiddenField(form.body, 'csrf'),
        username: 'alice',
        password: 'alice-password',
        action: 'sign-in',
      }).toString(),
    });
    t.equal(signedIn.statusCode, 303, signedIn.body);
    const cookies = `${csrfPair}; ${cookieOf(signedIn, 'host_session')}`;
    const home = await host.inject({ method: 'GET', url: '/', headers: { cookie: cookies } });
    const out = await host.inject({
      method: 'POST',
      url: '/logout',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
      payload: new URLSearchParams({ csrf: hiddenField(home.body, 'csrf') }).toString(),
    });
    t.equal(out.statusCode, 303);
    t.equal(await gatehouse.sessions.current(elsewhere.cookie.value!), null, 'alice is signed out of Gatehouse too');
    t.ok(await gatehouse.sessions.current(other.cookie.value!), 'bob is not');
  },
);
