import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { cookieName } from '../../src/oauth/browser-binding.js';
import { CsrfTokens } from '../../src/oauth/csrf.js';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { createAuthorizationRequest } from '../../src/repositories/authorization-request.repository.js';
import { findConsent } from '../../src/repositories/consent.repository.js';
import { insertSession } from '../../src/repositories/session.repository.js';
import { isLoopbackHost } from '../../src/lib/loopback.js';
import { redirectTarget } from '../../src/services/authorization/consent-page.js';
import { catalogueProblems, negotiateLocale, SUPPORTED_LOCALES } from '../../src/lib/i18n.js';
import { BASE_ENV, buildTestApp } from '../helper.js';
import { readFileSync } from 'node:fs';
import { assertPageHeaders, assertPageMarkup } from '../fixtures/pages.js';

const ENV = {
  ISSUER: 'https://auth.example.com',
  SCOPES: '{"read":"Read your data","write":"Change your data","odd":"<b>bold</b> & \\"quoted\\""}',
  RESOURCES: 'https://api.example.com',
};
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const REDIRECT = 'https://app.example.com/cb';

interface Browser {
  /** The session cookie value (the session id). */
  sessionId: string;
  /** The browser-binding cookie value. */
  binding: string;
}

interface Scenario {
  app: FastifyInstance;
  clientId: string;
  sub: string;
  pendingId: string;
  browser: Browser;
}

async function newClient(app: FastifyInstance, overrides: Record<string, unknown> = {}): Promise<string> {
  const { client } = await app.clientAdmin.create({
    name: 'Example App',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    ...overrides,
  });
  return client.client_id;
}

async function newSession(
  app: FastifyInstance,
  sub: string,
  claims: Record<string, unknown> = { name: 'Ada Lovelace', email: 'ada@example.com' },
): Promise<string> {
  const sessionId = generateToken();
  await insertSession(app.database.db, {
    id_hash: hashSecret(sessionId),
    sub,
    auth_time: new Date(Date.now() - 10_000),
    amr: ['pwd'],
    acr: null,
    claims: JSON.stringify(claims),
    expires_at: new Date(Date.now() + 3_600_000),
  });
  return sessionId;
}

interface PendingOptions {
  clientId: string;
  sessionId: string | null;
  redirectUri?: string;
  scopes?: string[];
  resources?: string[];
  prompt?: string | null;
  state?: string | null;
  expiresAt?: Date;
  uiLocales?: string | null;
}

async function newPending(app: FastifyInstance, o: PendingOptions): Promise<{ id: string; binding: string }> {
  const binding = generateToken();
  const id = generateToken();
  await createAuthorizationRequest(app.database.db, {
    id,
    client_id: o.clientId,
    redirect_uri: o.redirectUri ?? REDIRECT,
    redirect_uri_given: true,
    state: o.state === undefined ? 'xyz-state' : o.state,
    scopes: o.scopes ?? ['read', 'write'],
    resources: o.resources ?? ['https://api.example.com'],
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    prompt: o.prompt ?? null,
    max_age: null,
    login_hint: null,
    ui_locales: o.uiLocales ?? null,
    binding_hash: hashSecret(binding),
    session_hash: o.sessionId === null ? null : hashSecret(o.sessionId),
    expires_at: o.expiresAt ?? new Date(Date.now() + 600_000),
    answered_at: new Date(),
    completed_at: null,
  });
  return { id, binding };
}

/** An app with a client, a signed-in user and a pending request waiting for consent in that user's browser. */
async function scenario(
  t: Tap.Test,
  clientOverrides: Record<string, unknown> = {},
  pending: Partial<PendingOptions> = {},
  env: Record<string, string> = {},
): Promise<Scenario> {
  const app = await buildTestApp(t, { ...ENV, ...env });
  const clientId = await newClient(app, clientOverrides);
  const sub = `user-${randomBytes(4).toString('hex')}`;
  const sessionId = await newSession(app, sub);
  const { id, binding } = await newPending(app, { clientId, sessionId, ...pending });
  return { app, clientId, sub, pendingId: id, browser: { sessionId, binding } };
}

function cookies(app: FastifyInstance, browser: Partial<Browser>): Record<string, string> {
  const out: Record<string, string> = {};
  if (browser.sessionId !== undefined) out[app.sessions.cookieName] = browser.sessionId;
  if (browser.binding !== undefined) out[cookieName(app.config, 'gatehouse_bind')] = browser.binding;
  return out;
}

function getConsent(s: Pick<Scenario, 'app'>, browser: Partial<Browser>, query: string) {
  return s.app.inject({ method: 'GET', url: `/consent?${query}`, cookies: cookies(s.app, browser) });
}

function postConsent(
  s: Pick<Scenario, 'app'>,
  browser: Partial<Browser>,
  body: string,
  headers: Record<string, string> = FORM,
) {
  return s.app.inject({ method: 'POST', url: '/consent', cookies: cookies(s.app, browser), headers, payload: body });
}

/** Shows the page and reads the CSRF token from its form. */
async function csrfFrom(s: Scenario, browser = s.browser, pendingId = s.pendingId): Promise<string> {
  const res = await getConsent(s, browser, `request=${pendingId}`);
  const match = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(res.body);
  if (!match?.[1]) throw new Error(`no CSRF token on the page (${res.statusCode}): ${res.body.slice(0, 300)}`);
  return match[1];
}

function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

async function isLive(app: FastifyInstance, id: string): Promise<boolean> {
  const row = await app.database.db
    .selectFrom('authorization_requests')
    .select('completed_at')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return row.completed_at === null;
}

async function codesFor(app: FastifyInstance, clientId: string): Promise<number> {
  const rows = await app.database.db
    .selectFrom('authorization_codes')
    .select('code_hash')
    .where('client_id', '=', clientId)
    .execute();
  return rows.length;
}

t.test('the consent page shows the client, what it asks for, where it goes and who is signed in', async (t) => {
  const s = await scenario(
    t,
    {
      client_uri: 'https://app.example.com',
      logo_uri: 'https://app.example.com/logo.png',
      policy_uri: 'https://app.example.com/privacy',
      tos_uri: 'https://app.example.com/terms',
      scopes: ['read', 'write', 'custom:thing'],
    },
    { scopes: ['read', 'write', 'custom:thing'] },
    { ENFORCE_SCOPES: 'false' },
  );
  const res = await getConsent(s, s.browser, `request=${s.pendingId}`);
  t.equal(res.statusCode, 200, res.body);
  assertPageHeaders(t, res.headers, 'consent page', "'self' https://app.example.com");
  assertPageMarkup(t, res.body, 'consent page');
  const html = res.body;
  t.match(html, /<h1><span class="client-name">Example App<\/span> wants to access your account<\/h1>/);
  t.match(
    html,
    /<img class="client-logo" src="https:\/\/app\.example\.com\/logo\.png" alt="" width="56" height="56" referrerpolicy="no-referrer">/,
  );
  t.match(html, /<a href="https:\/\/app\.example\.com" rel="noopener noreferrer">Website<\/a>/);
  t.match(html, /<a href="https:\/\/app\.example\.com\/privacy" rel="noopener noreferrer">Privacy policy<\/a>/);
  t.match(html, /<a href="https:\/\/app\.example\.com\/terms" rel="noopener noreferrer">Terms of service<\/a>/);
  t.match(
    html,
    /<ul class="scopes">[\s\S]*Read your data[\s\S]*Change your data[\s\S]*<\/ul>/,
    'each scope with its catalogue description, as a list',
  );
  t.match(
    html,
    /<li><span class="scope-description">Read your data<\/span> <code class="scope-name">read<\/code><\/li>/,
  );
  t.match(
    html,
    /<li><span class="scope-description">custom:thing<\/span><\/li>/,
    'a scope unknown to the catalogue is shown by name',
  );
  t.match(html, /<ul class="resources">\s*<li><code>https:\/\/api\.example\.com<\/code><\/li>/);
  t.match(html, /<h2 id="resources-heading">On this service<\/h2>/);
  t.match(html, /<p class="redirect-host">app\.example\.com<\/p>/, 'the redirect host, prominently');
  t.notMatch(html, /class="warning"/, 'no loopback warning for a web redirect');
  t.match(
    html,
    /Signed in as<\/span>\s*<strong>Ada Lovelace<\/strong> <span class="muted">\(ada@example\.com\)<\/span>/,
  );
  t.match(html, /<form class="decision" method="post" action="\/consent">/);
  t.match(html, new RegExp(`<input type="hidden" name="request" value="${s.pendingId}">`));
  t.match(html, /<input type="hidden" name="csrf" value="[A-Za-z0-9_-]{43}">/);
  t.match(html, /<button type="submit" class="button button-secondary" name="decision" value="deny">Deny<\/button>/);
  t.match(html, /<button type="submit" class="button button-primary" name="decision" value="allow">Allow<\/button>/);
  t.equal((html.match(/<form/g) ?? []).length, 1, 'one form, two submit buttons');
  t.ok(await isLive(s.app, s.pendingId), 'showing the page changes nothing');
});

t.test('a client without logo or links gets a monogram; a user without name shows email, then sub', async (t) => {
  const s = await scenario(t, { name: 'zeta tool' }, { scopes: [], resources: [] });
  const res = await getConsent(s, s.browser, `request=${s.pendingId}`);
  t.equal(res.statusCode, 200, res.body);
  t.match(res.body, /<div class="client-logo client-monogram" aria-hidden="true">Z<\/div>/);
  t.notMatch(res.body, /<img/);
  t.notMatch(res.body, /client-links/);
  t.match(res.body, /Access your account with no specific permissions\./);
  t.notMatch(res.body, /resources-heading/, 'no resources section when none');

  const emailOnly = await newSession(s.app, 'user-email', { email: 'only@example.com' });
  const p1 = await newPending(s.app, { clientId: s.clientId, sessionId: emailOnly });
  const r1 = await getConsent(s, { sessionId: emailOnly, binding: p1.binding }, `request=${p1.id}`);
  t.match(r1.body, /<strong>only@example\.com<\/strong>/);

  const bare = await newSession(s.app, 'user-<bare>', {});
  const p2 = await newPending(s.app, { clientId: s.clientId, sessionId: bare });
  const r2 = await getConsent(s, { sessionId: bare, binding: p2.binding }, `request=${p2.id}`);
  t.match(r2.body, /<strong><code>user-&lt;bare&gt;<\/code><\/strong>/, 'sub, escaped');
});

t.test('a loopback redirect shows a warning to continue only if the user started this on this computer', async (t) => {
  const app = await buildTestApp(t, ENV);
  const clientId = await newClient(app, {
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/cb', 'http://[::1]/cb', 'http://localhost:8080/cb', 'com.example.app:/cb'],
  });
  const cases = [
    ['http://127.0.0.1:53682/cb', '127.0.0.1', "'self' http://127.0.0.1:53682"],
    ['http://[::1]/cb', '[::1]', "'self' http:"],
    ['http://localhost:8080/cb', 'localhost', "'self' http://localhost:8080"],
  ] as const;
  for (const [uri, host, formAction] of cases) {
    const sessionId = await newSession(app, 'user-1');
    const p = await newPending(app, { clientId, sessionId, redirectUri: uri });
    const res = await getConsent({ app }, { sessionId, binding: p.binding }, `request=${p.id}`);
    t.equal(res.statusCode, 200, res.body);
    assertPageHeaders(t, res.headers, uri, formAction);
    t.match(res.body, new RegExp(`<p class="redirect-host">${host.replace(/[[\].]/g, '\\$&')}</p>`), uri);
    t.match(
      res.body,
      /<div class="warning" role="note">\s*<p><strong>This address is on your own computer\.<\/strong> Only continue if you started this yourself, on this computer, just now\./,
      uri,
    );
  }
  const sessionId = await newSession(app, 'user-1');
  const p = await newPending(app, { clientId, sessionId, redirectUri: 'com.example.app:/cb' });
  const res = await getConsent({ app }, { sessionId, binding: p.binding }, `request=${p.id}`);
  t.match(res.body, /<p class="redirect-host">com\.example\.app<\/p>/);
  assertPageHeaders(t, res.headers, 'private-use scheme', "'self' com.example.app:");
  t.match(res.body, /This is an app installed on your device\./);
});

t.test('loopback detection', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '[::1]', 'localhost', 'app.localhost', '[::ffff:7f00:1]'])
    t.ok(isLoopbackHost(host), host);
  for (const host of ['example.com', '128.0.0.1', '10.0.0.1', 'localhost.example.com', '[::2]', '1270.0.0.1'])
    t.notOk(isLoopbackHost(host), host);
  t.same(
    redirectTarget('https://127.0.0.1:8443/cb'),
    { host: '127.0.0.1', kind: 'loopback' },
    'https on loopback is still this computer',
  );
  t.same(redirectTarget('http://[::ffff:127.0.0.1]/cb'), { host: '[::ffff:7f00:1]', kind: 'loopback' });
  t.same(redirectTarget('https://app.example.com/cb'), { host: 'app.example.com', kind: 'web' });
});

t.test('a hostile client name and scope descriptions are escaped everywhere', async (t) => {
  const s = await scenario(
    t,
    { name: '<script>alert(1)</script>" onmouseover="x', scopes: ['read', 'odd'] },
    { scopes: ['read', 'odd'] },
  );
  const res = await getConsent(s, s.browser, `request=${s.pendingId}`);
  t.equal(res.statusCode, 200, res.body);
  assertPageMarkup(t, res.body, 'hostile consent page');
  t.notMatch(res.body, /<script>alert/);
  t.notMatch(res.body, /<b>bold<\/b>/);
  t.match(
    res.body,
    /<span class="client-name">&lt;script&gt;alert\(1\)&lt;\/script&gt;&quot; onmouseover=&quot;x<\/span>/,
  );
  t.match(
    res.body,
    /<title>Allow &lt;script&gt;alert\(1\)&lt;\/script&gt;&quot; onmouseover=&quot;x\? · auth\.example\.com<\/title>/,
  );
  t.match(
    res.body,
    /Only allow this if you trust &lt;script&gt;alert\(1\)&lt;\/script&gt;&quot; onmouseover=&quot;x\./,
  );
  t.match(res.body, /<span class="scope-description">&lt;b&gt;bold&lt;\/b&gt; &amp; &quot;quoted&quot;<\/span>/);
});

t.test('allow stores the consent and sends the browser to the client with code, state and iss', async (t) => {
  const s = await scenario(t);
  const csrf = await csrfFrom(s);
  const res = await postConsent(s, s.browser, form({ request: s.pendingId, decision: 'allow', csrf }));
  t.equal(res.statusCode, 303, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  const location = new URL(res.headers.location as string);
  t.equal(`${location.origin}${location.pathname}`, REDIRECT);
  t.match(location.searchParams.get('code'), /^[A-Za-z0-9_-]{43}$/);
  t.equal(location.searchParams.get('state'), 'xyz-state');
  t.equal(location.searchParams.get('iss'), 'https://auth.example.com', 'RFC 9207');
  const consent = await findConsent(s.app.database.db, s.sub, s.clientId);
  t.same(consent?.scopes, ['read', 'write']);
  t.same(consent?.resources, ['https://api.example.com']);
  t.notOk(await isLive(s.app, s.pendingId), 'the request is completed');
  t.equal(await codesFor(s.app, s.clientId), 1);

  const again = await postConsent(s, s.browser, form({ request: s.pendingId, decision: 'allow', csrf }));
  t.equal(again.statusCode, 400, 'a second decision for a completed request is an error page');
  assertPageHeaders(t, again.headers, 'replayed decision');
  t.equal(await codesFor(s.app, s.clientId), 1, 'no second code');
});

t.test('the code carries the public sid of the session that issued it, never the cookie or its hash', async (t) => {
  const s = await scenario(t);
  const other = await newSession(s.app, s.sub);
  const sessions = await s.app.database.db
    .selectFrom('sessions')
    .select(['id_hash', 'sid'])
    .where('sub', '=', s.sub)
    .execute();
  t.equal(sessions.length, 2);
  const [first, second] = sessions.map((row) => row.sid);
  t.match(first, /^[0-9a-f]{32}$/, 'the database gives every session a random sid');
  t.not(first, second, 'sids are unique');
  const mine = sessions.find((row) => row.id_hash === hashSecret(s.browser.sessionId));
  t.not(mine?.sid, s.browser.sessionId);
  t.not(mine?.sid, hashSecret(other));

  const csrf = await csrfFrom(s);
  const res = await postConsent(s, s.browser, form({ request: s.pendingId, decision: 'allow', csrf }));
  t.equal(res.statusCode, 303, res.body);
  const code = new URL(res.headers.location as string).searchParams.get('code') ?? '';
  const row = await s.app.database.db
    .selectFrom('authorization_codes')
    .select('sid')
    .where('code_hash', '=', hashSecret(code))
    .executeTakeFirstOrThrow();
  t.equal(row.sid, mine?.sid);
  t.not(row.sid, mine?.id_hash);
});

t.test('allow with prompt=consent still issues the code (no loop back to the page)', async (t) => {
  const s = await scenario(t, {}, { prompt: 'consent', state: null });
  const csrf = await csrfFrom(s);
  const res = await postConsent(s, s.browser, form({ request: s.pendingId, decision: 'allow', csrf }));
  t.equal(res.statusCode, 303, res.body);
  const location = new URL(res.headers.location as string);
  t.ok(location.searchParams.get('code'));
  t.notOk(location.searchParams.has('state'), 'no state when the client sent none');
});

t.test('deny sends access_denied with state and iss, and stores nothing', async (t) => {
  const s = await scenario(t);
  const csrf = await csrfFrom(s);
  const res = await postConsent(s, s.browser, form({ request: s.pendingId, decision: 'deny', csrf }));
  t.equal(res.statusCode, 303, res.body);
  const location = new URL(res.headers.location as string);
  t.equal(`${location.origin}${location.pathname}`, REDIRECT);
  t.equal(location.searchParams.get('error'), 'access_denied');
  t.equal(location.searchParams.get('state'), 'xyz-state');
  t.equal(location.searchParams.get('iss'), 'https://auth.example.com');
  t.notOk(location.searchParams.has('code'));
  t.equal(await findConsent(s.app.database.db, s.sub, s.clientId), undefined);
  t.notOk(await isLive(s.app, s.pendingId));
  t.equal(await codesFor(s.app, s.clientId), 0);
});

t.test('CSRF: a missing, wrong or foreign token is refused with 403 and changes nothing', async (t) => {
  const s = await scenario(t);
  const csrf = await csrfFrom(s);
  // Another request in the same browser session, and another session with its own request.
  const other = await newPending(s.app, { clientId: s.clientId, sessionId: s.browser.sessionId });
  const otherCsrf = await csrfFrom(s, { ...s.browser, binding: other.binding }, other.id);
  const mallorySession = await newSession(s.app, 'mallory');
  const mallory = await newPending(s.app, { clientId: s.clientId, sessionId: mallorySession });
  const malloryCsrf = await csrfFrom(s, { sessionId: mallorySession, binding: mallory.binding }, mallory.id);
  t.not(otherCsrf, csrf);
  t.not(malloryCsrf, csrf);

  const cases: Array<[string, Record<string, string>]> = [
    ['missing token', { request: s.pendingId, decision: 'allow' }],
    ['empty token', { request: s.pendingId, decision: 'allow', csrf: '' }],
    ['wrong token', { request: s.pendingId, decision: 'allow', csrf: generateToken() }],
    ['malformed token', { request: s.pendingId, decision: 'allow', csrf: `${csrf}x` }],
    ['token of another request in this session', { request: s.pendingId, decision: 'allow', csrf: otherCsrf }],
    ['token of another session', { request: s.pendingId, decision: 'allow', csrf: malloryCsrf }],
    ['deny with a wrong token', { request: s.pendingId, decision: 'deny', csrf: otherCsrf }],
  ];
  for (const [name, params] of cases) {
    const res = await postConsent(s, s.browser, form(params));
    t.ok(res.statusCode === 403 || res.statusCode === 400, `${name}: ${res.statusCode}`);
    if (name !== 'missing token' && name !== 'empty token' && name !== 'malformed token')
      t.equal(res.statusCode, 403, name);
    t.notOk(res.headers.location, `${name}: no redirect`);
    assertPageHeaders(t, res.headers, name);
  }
  t.equal(await findConsent(s.app.database.db, s.sub, s.clientId), undefined, 'no consent stored');
  t.ok(await isLive(s.app, s.pendingId), 'the request is still pending');
  t.equal(await codesFor(s.app, s.clientId), 0, 'no code issued');

  const ok = await postConsent(s, s.browser, form({ request: s.pendingId, decision: 'allow', csrf }));
  t.equal(ok.statusCode, 303, 'the right token still works afterwards');
});

t.test(
  'the CSRF token is the same on every replica (derived from KEY_ENCRYPTION_SECRET, not per process)',
  async (t) => {
    const s = await scenario(t);
    const csrf = await csrfFrom(s);
    const replica = await buildTestApp(t, ENV);
    t.equal(await csrfFrom({ ...s, app: replica }), csrf);
    const res = await postConsent({ app: replica }, s.browser, form({ request: s.pendingId, decision: 'allow', csrf }));
    t.equal(res.statusCode, 303, 'a form shown by one replica is accepted by another');

    const tokens = new CsrfTokens(BASE_ENV.KEY_ENCRYPTION_SECRET!);
    t.equal(
      tokens.issue('consent', hashSecret(s.browser.sessionId), s.pendingId),
      csrf,
      'the same derivation as the route',
    );
    const stranger = new CsrfTokens('another-test-only-secret-4kd93mx02jq8zv71pp');
    t.not(
      stranger.issue('consent', hashSecret(s.browser.sessionId), s.pendingId),
      csrf,
      'a different secret derives a different key',
    );
    t.not(
      tokens.issue('sign-out', hashSecret(s.browser.sessionId), s.pendingId),
      csrf,
      'the form purpose is part of the token',
    );
    t.notOk(tokens.verify(undefined, 'consent', 'a', 'b'));
    t.notOk(tokens.verify(42, 'consent', 'a', 'b'));
    t.ok(tokens.verify(tokens.issue('consent', 'a', 'b'), 'consent', 'a', 'b'));
    t.notOk(
      tokens.verify(tokens.issue('consent', 'a', 'b'), 'consent', 'ab', ''),
      'parts cannot be shifted between fields',
    );
    t.throws(() => new CsrfTokens(''));
  },
);

t.test('without the right session, binding cookie or a live request: an error page, never a redirect', async (t) => {
  const s = await scenario(t);
  const csrf = await csrfFrom(s);
  const otherSession = await newSession(s.app, s.sub, {});
  const revoked = await newSession(s.app, s.sub);
  await s.app.database.db
    .updateTable('sessions')
    .set({ revoked_at: new Date() })
    .where('id_hash', '=', hashSecret(revoked))
    .execute();
  const unanswered = await newPending(s.app, { clientId: s.clientId, sessionId: null });
  const expired = await newPending(s.app, {
    clientId: s.clientId,
    sessionId: s.browser.sessionId,
    expiresAt: new Date(Date.now() - 1000),
  });

  const cases: Array<[string, Partial<Browser>, string, number]> = [
    ['no session cookie', { binding: s.browser.binding }, s.pendingId, 403],
    ['unknown session', { binding: s.browser.binding, sessionId: generateToken() }, s.pendingId, 403],
    ['another session of the same user', { binding: s.browser.binding, sessionId: otherSession }, s.pendingId, 403],
    ['revoked session', { binding: s.browser.binding, sessionId: revoked }, s.pendingId, 403],
    ['no binding cookie', { sessionId: s.browser.sessionId }, s.pendingId, 403],
    ['wrong binding cookie', { sessionId: s.browser.sessionId, binding: generateToken() }, s.pendingId, 403],
    ['request not signed in yet', { sessionId: s.browser.sessionId, binding: unanswered.binding }, unanswered.id, 403],
    ['unknown request', s.browser, generateToken(), 400],
    ['expired request', { sessionId: s.browser.sessionId, binding: expired.binding }, expired.id, 400],
  ];
  for (const [name, browser, id, status] of cases) {
    const get = await getConsent(s, browser, `request=${id}`);
    t.equal(get.statusCode, status, `GET, ${name}`);
    t.notOk(get.headers.location, `GET, ${name}: no redirect`);
    assertPageHeaders(t, get.headers, `GET, ${name}`);
    t.notMatch(get.body, /name="csrf"/, `GET, ${name}: no form`);
    const post = await postConsent(s, browser, form({ request: id, decision: 'allow', csrf }));
    t.equal(post.statusCode, status, `POST, ${name}`);
    t.notOk(post.headers.location, `POST, ${name}: no redirect`);
    assertPageHeaders(t, post.headers, `POST, ${name}`);
  }
  t.equal(await findConsent(s.app.database.db, s.sub, s.clientId), undefined);
  t.ok(await isLive(s.app, s.pendingId));

  await s.app.clientAdmin.setDisabled(s.clientId, true);
  const disabled = await getConsent(s, s.browser, `request=${s.pendingId}`);
  t.equal(disabled.statusCode, 400, 'a disabled client');
  t.match(disabled.body, /The application is unknown or has been disabled\./);
});

t.test('bad parameters: an error page with a precise message, never a 500', async (t) => {
  const s = await scenario(t);
  const csrf = await csrfFrom(s);
  const gets: Array<[string, string, number, RegExp]> = [
    ['no request', '', 400, /Missing querystring parameter: request\./],
    ['empty request', 'request=', 400, /request/i],
    ['duplicated request', `request=${s.pendingId}&request=${s.pendingId}`, 400, /Parameter request is repeated/],
    ['overlong request', `request=${'a'.repeat(500)}`, 400, /request/i],
    ['bad characters', `request=${encodeURIComponent('<script>')}`, 400, /request/i],
  ];
  for (const [name, query, status, message] of gets) {
    const res = await getConsent(s, s.browser, query);
    t.equal(res.statusCode, status, `GET ${name}`);
    t.match(res.body, message, `GET ${name}`);
    assertPageHeaders(t, res.headers, `GET ${name}`);
  }
  const posts: Array<[string, string, Record<string, string>, number, RegExp]> = [
    [
      'duplicated decision',
      `request=${s.pendingId}&decision=deny&decision=allow&csrf=${csrf}`,
      FORM,
      400,
      /Parameter decision is repeated/,
    ],
    [
      'duplicated request',
      `request=${s.pendingId}&request=${s.pendingId}&decision=allow&csrf=${csrf}`,
      FORM,
      400,
      /Parameter request is repeated/,
    ],
    [
      'duplicated csrf',
      `request=${s.pendingId}&decision=allow&csrf=${csrf}&csrf=${csrf}`,
      FORM,
      400,
      /Parameter csrf is repeated/,
    ],
    ['unknown decision', form({ request: s.pendingId, decision: 'maybe', csrf }), FORM, 400, /decision/i],
    ['no decision', form({ request: s.pendingId, csrf }), FORM, 400, /Missing parameter: decision\./],
    [
      'JSON body',
      JSON.stringify({ request: s.pendingId, decision: 'allow', csrf }),
      { 'content-type': 'application/json' },
      415,
      /application\/x-www-form-urlencoded/,
    ],
    ['text body', 'hello', { 'content-type': 'text/plain' }, 415, /application\/x-www-form-urlencoded/],
    ['overlong csrf', form({ request: s.pendingId, decision: 'allow', csrf: 'a'.repeat(500) }), FORM, 400, /csrf/i],
  ];
  for (const [name, body, headers, status, message] of posts) {
    const res = await postConsent(s, s.browser, body, headers);
    t.equal(res.statusCode, status, `POST ${name}`);
    t.match(res.body, message, `POST ${name}`);
    assertPageHeaders(t, res.headers, `POST ${name}`);
  }
  const huge = await postConsent(
    s,
    s.browser,
    form({ request: s.pendingId, decision: 'allow', csrf: 'a'.repeat(20_000) }),
  );
  t.equal(huge.statusCode, 413, 'a body over BODY_LIMIT_BYTES');
  assertPageHeaders(t, huge.headers, 'POST too large');
  t.ok(await isLive(s.app, s.pendingId), 'nothing changed');
  t.equal(await findConsent(s.app.database.db, s.sub, s.clientId), undefined);
});

t.test('no CORS on /consent, and other methods are refused', async (t) => {
  const s = await scenario(t);
  const res = await s.app.inject({
    method: 'GET',
    url: `/consent?request=${s.pendingId}`,
    cookies: cookies(s.app, s.browser),
    headers: { origin: 'https://evil.example' },
  });
  t.equal(res.statusCode, 200);
  t.notOk(res.headers['access-control-allow-origin']);
  const preflight = await s.app.inject({
    method: 'OPTIONS',
    url: '/consent',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  t.notOk(preflight.headers['access-control-allow-origin']);
  const put = await s.app.inject({ method: 'PUT', url: '/consent' });
  t.equal(put.statusCode, 405);
});

t.test('every message catalogue has every English key with the same placeholders', async (t) => {
  const catalogues = Object.fromEntries(
    SUPPORTED_LOCALES.map((l) => [
      l,
      JSON.parse(readFileSync(new URL(`../../views/locales/${l}.json`, import.meta.url), 'utf8')) as unknown,
    ]),
  );
  t.same(catalogueProblems(catalogues), [], 'en, de, fr, es, ja complete');
  t.same(SUPPORTED_LOCALES, ['en', 'de', 'fr', 'es', 'ja']);
  const broken = { ...catalogues, de: { ...(catalogues.de as object), 'signOut.title': undefined } };
  t.not(catalogueProblems(broken).length, 0, 'a missing message is reported');
});

t.test('language: ui_locales first, then Accept-Language, then English', async (t) => {
  t.equal(negotiateLocale('de-CH fr', 'ja'), 'de', 'ui_locales wins (OIDC Core §3.1.2.1), by its language');
  t.equal(negotiateLocale('xx', 'ja,en;q=0.5'), 'ja', 'an unsupported ui_locales falls through to Accept-Language');
  t.equal(negotiateLocale(null, 'es-MX;q=0.9, fr;q=1'), 'fr', 'Accept-Language by quality');
  t.equal(negotiateLocale(null, 'xx, zz'), 'en');
  t.equal(negotiateLocale(null, undefined), 'en');
});

t.test("the consent page in the user's language, with the operator's brand and the resource by its name", async (t) => {
  const env = {
    BRAND_NAME: 'Acme <Corp>',
    BRAND_SUPPORT_EMAIL: 'help@acme.example',
    RESOURCE_NAMES: '{"https://api.example.com":"Acme Notes API"}',
  };
  const de = await scenario(t, {}, { uiLocales: 'de' }, env);
  const page = await getConsent(de, de.browser, `request=${de.pendingId}`);
  t.equal(page.statusCode, 200);
  t.match(page.body, /<html lang="de">/, 'ui_locales=de');
  t.match(page.body, 'Acme Notes API', 'the resource by its display name');
  t.match(page.body, 'Acme &lt;Corp&gt;', 'the brand name, escaped');
  t.notMatch(page.body, 'Acme <Corp>');
  t.match(page.body, 'mailto:help@acme.example', 'the support contact');

  const ja = await scenario(t, {}, {}, env);
  const res = await ja.app.inject({
    method: 'GET',
    url: `/consent?request=${ja.pendingId}`,
    cookies: cookies(ja.app, ja.browser),
    headers: { 'accept-language': 'ja-JP,ja;q=0.9,en;q=0.5' },
  });
  t.equal(res.statusCode, 200);
  t.match(res.body, /<html lang="ja">/, 'Accept-Language: ja');
  const en = await scenario(t);
  t.match((await getConsent(en, en.browser, `request=${en.pendingId}`)).body, /<html lang="en">/, 'English by default');
});
