import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { answerLoginRequest, HANDSHAKE_ENV, parseLoginRequest } from '../fixtures/host.js';
import { Browser, pkce } from '../fixtures/registration.js';
import { buildTestApp } from '../helper.js';
import { ISSUER } from '../kit/issuer.js';

const ENV = {
  ...HANDSHAKE_ENV,
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: 'https://mcp.example.com/mcp',
};
const REDIRECT = 'http://127.0.0.1/callback';

function pathOf(location: string | string[] | undefined): string {
  const url = new URL(String(location), ISSUER);
  return `${url.pathname}${url.search}`;
}

function authorizeUrl(clientId: string, challenge: string, extra: Record<string, string> = {}) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: 'http://127.0.0.1:53123/callback',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'read write',
    state: 'xyz-state',
    resource: 'https://mcp.example.com/mcp',
    ...extra,
  });
  return `/authorize?${q}`;
}

function csrfOf(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html) ?? /name="csrf_token" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the consent page');
  return match[1]!;
}

async function publicClient(app: FastifyInstance) {
  const { client } = await app.clientAdmin.create({
    name: 'Native MCP client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read', 'write'],
  });
  return client.client_id;
}

t.test('the whole flow: authorize → host sign-in → consent → code → token → refresh → revoke', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await publicClient(app);
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();

  const start = await browser.get(authorizeUrl(clientId, challenge));
  t.equal(start.statusCode, 303, start.body);
  t.equal(start.headers['cache-control'], 'no-store');
  t.equal(start.headers['referrer-policy'], 'no-referrer');
  t.match(start.headers.location, /^https:\/\/host\.example\.com\/login\?login_request=/, 'to the host sign-in page');
  const loginRequest = parseLoginRequest(start.headers.location);
  t.equal(loginRequest.payload.return_to, `${ISSUER}/sign-in/complete`);

  const complete = await browser.get(
    await answerLoginRequest(start.headers.location, {
      sub: 'alice',
      claims: { name: 'Alice', email: 'alice@example.com' },
    }),
  );
  t.equal(complete.statusCode, 303, complete.body);
  t.match(complete.headers.location, /\/consent\?request=/, 'first time: consent');

  const consent = await browser.get(pathOf(complete.headers.location));
  t.equal(consent.statusCode, 200, consent.body);
  t.match(consent.body, /Native MCP client/);
  t.match(consent.body, /Read your data/);
  t.match(consent.body, /127\.0\.0\.1/);
  const requestId = new URL(String(complete.headers.location), ISSUER).searchParams.get('request')!;
  const allowed = await browser.postForm('/consent', {
    request: requestId,
    csrf: csrfOf(consent.body),
    decision: 'allow',
  });
  t.equal(allowed.statusCode, 303, allowed.body);
  const callback = new URL(String(allowed.headers.location));
  t.equal(
    `${callback.origin}${callback.pathname}`,
    'http://127.0.0.1:53123/callback',
    'back to the loopback redirect with its port',
  );
  t.equal(callback.searchParams.get('state'), 'xyz-state');
  t.equal(callback.searchParams.get('iss'), ISSUER, 'RFC 9207 iss');
  const code = callback.searchParams.get('code')!;
  t.match(code, /^[A-Za-z0-9_-]{43}$/);

  const tokenRes = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      client_id: clientId,
      redirect_uri: 'http://127.0.0.1:53123/callback',
    }).toString(),
  });
  t.equal(tokenRes.statusCode, 200, tokenRes.body);
  const tokens = tokenRes.json();
  const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
  const { payload } = await jwtVerify(tokens.access_token, jwks, {
    issuer: ISSUER,
    audience: 'https://mcp.example.com/mcp',
    typ: 'at+jwt',
  });
  t.equal(payload.sub, 'alice');
  t.equal(payload.scope, 'read write');
  t.equal(payload.client_id, clientId);

  const refreshed = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: clientId,
    }).toString(),
  });
  t.equal(refreshed.statusCode, 200, refreshed.body);
  const revoked = await app.inject({
    method: 'POST',
    url: '/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: refreshed.json().refresh_token, client_id: clientId }).toString(),
  });
  t.equal(revoked.statusCode, 200);
  const after = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshed.json().refresh_token,
      client_id: clientId,
    }).toString(),
  });
  t.equal(after.json().error, 'invalid_grant', 'revoked');

  // Second time: the session skips the host, but a public client on a loopback redirect is asked again:
  // any local app could claim that port (RFC 8252 §8.6).
  const second = await browser.get(authorizeUrl(clientId, pkce().challenge));
  t.equal(second.statusCode, 303);
  t.match(second.headers.location, /\/consent\?request=/, 'no silent code for a loopback public client');
  const silent = await browser.get(authorizeUrl(clientId, pkce().challenge, { prompt: 'none' }));
  t.equal(new URL(String(silent.headers.location)).searchParams.get('error'), 'consent_required');

  // prompt=consent shows the page again.
  const forced = await browser.get(authorizeUrl(clientId, pkce().challenge, { prompt: 'consent' }));
  t.match(forced.headers.location, /\/consent\?request=/);
  // prompt=login goes back to the host.
  const relogin = await browser.get(authorizeUrl(clientId, pkce().challenge, { prompt: 'login' }));
  t.match(relogin.headers.location, /^https:\/\/host\.example\.com\/login\?/, `${relogin.statusCode} ${relogin.body}`);
});

t.test('deny on the consent page returns access_denied with state and iss', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await publicClient(app);
  const browser = new Browser(app);
  const start = await browser.get(authorizeUrl(clientId, pkce().challenge));
  const complete = await browser.get(await answerLoginRequest(start.headers.location, { sub: 'bob' }));
  const consent = await browser.get(pathOf(complete.headers.location));
  const requestId = new URL(String(complete.headers.location), ISSUER).searchParams.get('request')!;
  const denied = await browser.postForm('/consent', {
    request: requestId,
    csrf: csrfOf(consent.body),
    decision: 'deny',
  });
  t.equal(denied.statusCode, 303);
  const url = new URL(String(denied.headers.location));
  t.equal(url.searchParams.get('error'), 'access_denied');
  t.equal(url.searchParams.get('state'), 'xyz-state');
  t.equal(url.searchParams.get('iss'), ISSUER);
  t.notOk(url.searchParams.get('code'));
});

t.test('prompt=none without a session answers login_required, with no page', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await publicClient(app);
  const res = await new Browser(app).get(authorizeUrl(clientId, pkce().challenge, { prompt: 'none' }));
  t.equal(res.statusCode, 303);
  const url = new URL(String(res.headers.location));
  t.equal(url.searchParams.get('error'), 'login_required');
  t.equal(url.searchParams.get('state'), 'xyz-state');
});

t.test('/authorize errors: a page before the redirect URI is trusted, a redirect after', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await publicClient(app);
  const browser = new Browser(app);
  const { challenge } = pkce();
  const pages: Array<[string, string]> = [
    ['unknown client', authorizeUrl('nope', challenge)],
    ['missing client_id', '/authorize?response_type=code'],
    ['unregistered redirect_uri', authorizeUrl(clientId, challenge, { redirect_uri: 'https://evil.example/cb' })],
    [
      'redirect_uri with a different path',
      authorizeUrl(clientId, challenge, { redirect_uri: 'http://127.0.0.1:53123/other' }),
    ],
    ['repeated client_id', `${authorizeUrl(clientId, challenge)}&client_id=${clientId}`],
    ['repeated redirect_uri', `${authorizeUrl(clientId, challenge)}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback`],
  ];
  for (const [name, url] of pages) {
    const res = await browser.get(url);
    t.equal(res.statusCode, 400, name);
    t.match(res.headers['content-type'], /^text\/html/, `${name}: an error page`);
    t.notOk(res.headers.location, `${name}: never a redirect`);
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/, `${name}: CSP`);
    t.equal(res.headers['x-frame-options'], 'DENY');
  }
  const redirected: Array<[string, Record<string, string>, string]> = [
    ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['no PKCE method', { code_challenge_method: '' }, 'invalid_request'],
    ['no PKCE', { code_challenge: '' }, 'invalid_request'],
    ['token response type', { response_type: 'token' }, 'unsupported_response_type'],
    ['unknown scope', { scope: 'read delete' }, 'invalid_scope'],
    ['unknown resource', { resource: 'https://other.example.com' }, 'invalid_target'],
    // select_account is an OIDC prompt the host now receives (docs/openid-connect.md); none with another is refused.
    ['bad prompt', { prompt: 'none login' }, 'invalid_request'],
    ['unknown prompt', { prompt: 'create' }, 'invalid_request'],
    ['bad max_age', { max_age: '-1' }, 'invalid_request'],
  ];
  for (const [name, extra, error] of redirected) {
    const res = await browser.get(authorizeUrl(clientId, challenge, extra));
    t.equal(res.statusCode, 303, name);
    const url = new URL(String(res.headers.location));
    t.equal(
      `${url.origin}${url.pathname}`,
      'http://127.0.0.1:53123/callback',
      `${name}: only to the registered redirect`,
    );
    t.equal(url.searchParams.get('error'), error, name);
    t.equal(url.searchParams.get('state'), 'xyz-state', name);
    t.equal(url.searchParams.get('iss'), ISSUER, name);
  }
  const dup = await browser.get(`${authorizeUrl(clientId, challenge)}&scope=read`);
  t.equal(
    new URL(String(dup.headers.location)).searchParams.get('error'),
    'invalid_request',
    'a repeated parameter after the redirect is trusted',
  );
});

t.test('no input makes /authorize redirect anywhere but a registered redirect URI or the host', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await publicClient(app);
  const browser = new Browser(app);
  const hostile = [
    'https://evil.example/cb',
    '//evil.example',
    'http://127.0.0.1.evil.example/callback',
    'http://127.0.0.1@evil.example/callback',
    'javascript:alert(1)',
    'http://localhost/callback',
    'HTTP://127.0.0.1/callback',
    'http://127.0.0.1/callback#frag',
    'http://127.0.0.1/callback?x=1',
  ];
  for (const redirect of hostile) {
    for (const extra of [{}, { response_type: 'token' }, { prompt: 'none' }] as Array<Record<string, string>>) {
      const res = await browser.get(authorizeUrl(clientId, pkce().challenge, { redirect_uri: redirect, ...extra }));
      t.ok(res.statusCode < 500, `${redirect}: ${res.statusCode}`);
      if (res.headers.location) {
        const url = new URL(String(res.headers.location));
        const ok =
          url.origin === 'https://host.example.com' ||
          (url.hostname === '127.0.0.1' && url.pathname === '/callback' && url.protocol === 'http:');
        t.ok(ok, `${redirect} → ${url.origin}${url.pathname}`);
      }
    }
  }
});

t.test(
  'remembered consent skips the page the second time for a client whose redirect is its own https origin',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const { client } = await app.clientAdmin.create({
      name: 'Browser app',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['https://spa.example.com/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const browser = new Browser(app);
    const url = (challenge: string, extra: Record<string, string> = {}) =>
      authorizeUrl(client.client_id, challenge, { redirect_uri: 'https://spa.example.com/callback', ...extra });
    const start = await browser.get(url(pkce().challenge));
    const complete = await browser.get(await answerLoginRequest(start.headers.location, { sub: 'carol' }));
    const consent = await browser.get(pathOf(complete.headers.location));
    const requestId = new URL(String(complete.headers.location), ISSUER).searchParams.get('request')!;
    const allowed = await browser.postForm('/consent', {
      request: requestId,
      csrf: csrfOf(consent.body),
      decision: 'allow',
    });
    t.ok(new URL(String(allowed.headers.location)).searchParams.get('code'));

    const second = await browser.get(url(pkce().challenge));
    const direct = new URL(String(second.headers.location));
    t.equal(`${direct.origin}${direct.pathname}`, 'https://spa.example.com/callback', 'straight back to the client');
    t.ok(direct.searchParams.get('code'), 'with a code, no page');
    const forced = await browser.get(url(pkce().challenge, { prompt: 'consent' }));
    t.match(forced.headers.location, /\/consent\?request=/, 'prompt=consent always asks');
  },
);

t.test('NUL characters in any parameter are refused precisely, never a 500', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await publicClient(app);
  const browser = new Browser(app);
  for (const extra of [
    { state: 'a\u0000b' },
    { login_hint: '\u0000' },
    { ui_locales: 'en\u0000' },
    { client_id: 'x\u0000' },
  ] as Array<Record<string, string>>) {
    const res = await browser.get(authorizeUrl(clientId, pkce().challenge, extra));
    t.equal(res.statusCode, 400, JSON.stringify(extra));
    t.match(res.headers['content-type'], /^text\/html/, 'an error page: the redirect is not trusted for such input');
  }
  const code = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=authorization_code&code=abc&code_verifier=${'a'.repeat(43)}&client_id=${clientId}&redirect_uri=a%00b`,
  });
  t.equal(code.statusCode, 400);
  t.equal(code.json().error, 'invalid_request');
  const consent = await browser.get('/consent?request=%00');
  t.equal(consent.statusCode, 400);
});

t.test('browser endpoints are rate limited per address; /token is not', async (t) => {
  const app = await buildTestApp(t, { ...ENV, RATE_LIMIT_PER_MINUTE: '3' });
  const clientId = await publicClient(app);
  const browser = new Browser(app);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await browser.get(authorizeUrl(clientId, pkce().challenge))).statusCode);
  t.same(statuses, [303, 303, 303, 429]);
  const limited = await browser.get(authorizeUrl(clientId, pkce().challenge));
  t.match(limited.headers['retry-after'], /^\d+$/);
  t.match(limited.headers['content-type'], /^text\/html/, 'an error page on a browser endpoint');
  const tokens = await Promise.all(
    Array.from({ length: 5 }, () =>
      app.inject({
        method: 'POST',
        url: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'grant_type=client_credentials',
      }),
    ),
  );
  t.ok(
    tokens.every((r) => r.statusCode === 401),
    '/token answers on its own terms',
  );
});
