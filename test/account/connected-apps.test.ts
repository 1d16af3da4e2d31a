import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { decodeJwt, jwtVerify } from 'jose';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import type { Client } from '../../src/oauth/client.js';
import { listLogoutDeliveries } from '../../src/repositories/logout-delivery.repository.js';
import { ISSUER, REDIRECT_URI, SESSION_COOKIE, handshakeEnv, sessionCount } from '../fixtures/handshake.js';
import {
  HOST_ID,
  HOST_SECRET,
  SIGN_IN_URL,
  answerLoginRequest,
  parseLoginRequest,
  signLoginResponse,
} from '../fixtures/host.js';
import { testConfig, testDatabase } from '../helper.js';
import { Browser, type Page } from '../kit/browser.js';
import { pkce } from '../kit/pkce.js';

/**
 * The connected-apps page (issue 13, docs/connected-apps.md): a user signs in through the host handshake
 * to GET /account/apps, sees the apps they allowed (and no one else's), revokes one with a CSRF-protected
 * POST, and the app's refresh tokens, access tokens and consent are gone while everything else stays.
 */

const ACCOUNT_COOKIE = '__Host-gatehouse_account';
const RESOURCE = 'https://api.example.com';
const ENV = handshakeEnv({
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: RESOURCE,
  RESOURCE_NAMES: JSON.stringify({ [RESOURCE]: 'Example Notes API' }),
  BRAND_NAME: 'Acme <Corp>',
  BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES: 'true',
  BACKCHANNEL_LOGOUT_POLL_MS: '3600000',
  LOG_LEVEL: 'info',
});

const clock = { now: new Date() };
const logs: Array<Record<string, unknown>> = [];
const app: FastifyInstance = await buildApp(testConfig(ENV), {
  database: await testDatabase(),
  clock: () => clock.now,
  logStream: new (await import('node:stream')).Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  }),
});
t.teardown(() => app.close());
await app.ready();

/** A relying party's back-channel logout endpoint on 127.0.0.1, recording what it receives. */
const received: URLSearchParams[] = [];
const rp: Server = createServer((req: IncomingMessage, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received.push(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    res.writeHead(200).end();
  });
});
await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => rp.close(() => resolve())));
const BACKCHANNEL_URI = `http://127.0.0.1:${(rp.address() as AddressInfo).port}/backchannel-logout`;

async function publicClient(name: string, overrides: Record<string, unknown> = {}): Promise<Client> {
  const { client } = await app.clientAdmin.create({
    name,
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read', 'write'],
    client_uri: 'https://app.example.com',
    ...overrides,
  });
  return client;
}

const notes = await publicClient('Notes', { backchannel_logout_uri: BACKCHANNEL_URI });
const calendar = await publicClient('Calendar');
const bobsOnly = await publicClient('Photos of Bob');

interface Tokens {
  access_token: string;
  refresh_token: string;
}

async function tokenRequest(form: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
  return { status: res.statusCode, body: res.json() };
}

/** A browser (cookie jar) that signs in as `sub` at the test host whenever Gatehouse sends it there. */
class User extends Browser {
  constructor(readonly sub: string) {
    super(app, ISSUER);
  }

  /** Follows 303s inside Gatehouse, signing in at the host when sent there; returns the last page. */
  async follow(first: Page): Promise<Page> {
    let page = first;
    for (let hop = 0; hop < 6 && page.status === 303 && page.location; hop++) {
      if (page.location.startsWith(`${SIGN_IN_URL}?`)) {
        const claims = { email: `${this.sub}@example.com`, name: this.sub[0]!.toUpperCase() + this.sub.slice(1) };
        page = await this.get(await answerLoginRequest(page.location, { sub: this.sub, claims }));
      } else if (page.location.startsWith(ISSUER)) page = await this.get(page.location);
      else break;
    }
    return page;
  }

  /** Authorizes `client` (consenting when asked) and redeems the code: a refresh-token chain for this user. */
  async allow(client: Client, scope: string): Promise<Tokens> {
    const { verifier, challenge } = pkce();
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: REDIRECT_URI,
      scope,
      resource: RESOURCE,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 's',
    });
    let page = await this.follow(await this.get(`/authorize?${query}`));
    if (page.status === 200 && page.url.includes('/consent')) {
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
      const request = new URL(page.url).searchParams.get('request')!;
      page = await this.post('/consent', { request, csrf, decision: 'allow' });
    }
    if (!page.location?.startsWith(REDIRECT_URI)) throw new Error(`no code: ${page.status} ${page.body}`);
    const code = new URL(page.location).searchParams.get('code')!;
    const { status, body } = await tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      client_id: client.client_id,
      code_verifier: verifier,
    });
    if (status !== 200) throw new Error(`token: ${status} ${JSON.stringify(body)}`);
    return body as unknown as Tokens;
  }

  /** The connected-apps page, signing in first when needed. */
  async appsPage(query = ''): Promise<Page> {
    return this.follow(await this.get(`/account/apps${query}`));
  }

  /** GET `url` (signed in already) from a browser whose Accept-Language is `language`. */
  getIn(language: string, url = '/account/apps'): Promise<Page> {
    return this.request(url, { headers: { 'accept-language': language } });
  }

  /** The CSRF token in the page's revoke forms. */
  static csrfOf(page: Page): string {
    const match = /name="csrf" value="([^"]+)"/.exec(page.body);
    if (!match) throw new Error('no CSRF field on the page');
    return match[1]!;
  }

  /** POSTs the revoke form as the page would (same-origin fetch metadata). */
  revoke(form: Record<string, string>, headers: Record<string, string> = { 'sec-fetch-site': 'same-origin' }) {
    return this.request('/account/apps/revoke', { form, headers });
  }
}

function refresh(client: Client, refreshToken: string) {
  return tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id });
}

async function introspect(token: string): Promise<boolean> {
  // The introspection caller: a confidential client of the operator's (RFC 7662 §2.1 needs a caller).
  const res = await app.inject({
    method: 'POST',
    url: '/introspect',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: await introspector },
    payload: new URLSearchParams({ token }).toString(),
  });
  if (res.statusCode !== 200) throw new Error(`introspect: ${res.statusCode} ${res.body}`);
  return res.json<{ active: boolean }>().active;
}
const introspector = app.clientAdmin
  .create({ name: 'API', grant_types: ['client_credentials'], scopes: ['read'] })
  .then(({ client, secret }) => `Basic ${Buffer.from(`${client.client_id}:${secret}`).toString('base64')}`);

/** Names of the apps listed on a page. */
function listed(page: Page): string[] {
  return [...page.body.matchAll(/<h2 class="app-name[^"]*">([^<]*)<\/h2>/g)].map((m) => m[1]!);
}

t.test('without a session the page sends the browser through the host sign-in and back', async (t) => {
  const user = new User('carol');
  const start = await user.get('/account/apps');
  t.equal(start.status, 303);
  t.ok(start.location?.startsWith(`${SIGN_IN_URL}?login_request=`), 'sent to the host sign-in URL');
  const setCookie = ([] as string[]).concat(start.headers['set-cookie'] ?? []).join('\n');
  t.match(setCookie, new RegExp(`${ACCOUNT_COOKIE}=[A-Za-z0-9_-]{43};`), 'a one-time account cookie is set');
  t.match(setCookie, /HttpOnly/);
  t.match(setCookie, /Secure/);
  t.match(setCookie, /SameSite=Lax/);

  const { payload } = await jwtVerify(
    start.location!.split('login_request=')[1]!,
    new TextEncoder().encode(HOST_SECRET),
    {
      algorithms: ['HS256'],
      typ: 'login-request+jwt',
      issuer: ISSUER,
      audience: HOST_ID,
    },
  );
  t.equal(payload.return_to, `${ISSUER}/sign-in/complete`, 'the host answers where it always does');
  t.match(payload.jti, /^account\.apps\.\d+\.[A-Za-z0-9_-]{43}$/, 'the jti is the signed state');
  t.notOk('client_id' in payload, 'no client asks');
  t.notOk('client_name' in payload);

  const back = await user.get(await answerLoginRequest(start.location!, { sub: 'carol' }));
  t.equal(back.status, 303);
  t.equal(back.location, `${ISSUER}/account/apps`, 'back on the page, never anywhere the request named');
  const cleared = ([] as string[]).concat(back.headers['set-cookie'] ?? []);
  t.ok(
    cleared.some((c) => c.startsWith(`${SESSION_COOKIE}=`)),
    'a session is created',
  );
  t.ok(
    cleared.some((c) => c.startsWith(`${ACCOUNT_COOKIE}=;`)),
    'the one-time cookie is cleared, so the answer cannot be used again',
  );

  const page = await user.get('/account/apps');
  t.equal(page.status, 200);
  t.match(page.body, 'No apps have access to your account.');
  t.match(page.headers['content-security-policy'], "frame-ancestors 'none'", 'never framed');
  t.match(page.headers['content-security-policy'], "form-action 'self'");
  t.equal(page.headers['x-frame-options'], 'DENY');
  t.equal(page.headers['referrer-policy'], 'no-referrer');
  t.equal(page.headers['cache-control'], 'no-store');
  t.equal((await app.inject({ method: 'HEAD', url: '/account/apps' })).statusCode, 405, 'no HEAD twin');
});

t.test('the account sign-in answer is refused in another browser, twice, expired or tampered with', async (t) => {
  const victim = new User('dave');
  const start = await victim.get('/account/apps');
  const { payload } = parseLoginRequest(start.location!);
  const answer = await signLoginResponse({ request: payload.jti, aud: ISSUER, sub: 'mallory' });
  const before = await sessionCount(app);

  // Login CSRF: an answer carried into a browser that did not start the sign-in.
  const other = new User('erin');
  const elsewhere = await other.get(`/sign-in/complete?login_response=${answer}`);
  t.equal(elsewhere.status, 403, 'another browser (no account cookie) is refused');
  t.match(elsewhere.body, 'started in another browser');

  const used = await victim.get(`/sign-in/complete?login_response=${answer}`);
  t.equal(used.status, 303, 'the browser that started it is signed in');
  const again = await victim.get(`/sign-in/complete?login_response=${answer}`);
  t.equal(again.status, 403, 'the same answer a second time is refused: its cookie is gone');
  t.equal(await sessionCount(app), before + 1, 'exactly one session came of it');

  // A state whose destination or expiry was changed no longer matches its MAC.
  const next = await victim.get('/account/apps?x');
  t.equal(next.status, 200, 'signed in: the page (an unknown query parameter is ignored)');
  const fresh = new User('frank');
  const started = await fresh.get('/account/apps');
  const jti = parseLoginRequest(started.location!).payload.jti;
  const [, , exp, mac] = jti.split('.');
  const forged = `account.apps.${Number(exp) + 3600}.${mac}`;
  const tampered = await fresh.get(
    `/sign-in/complete?login_response=${await signLoginResponse({ request: forged, aud: ISSUER, sub: 'frank' })}`,
  );
  t.equal(tampered.status, 403, 'a longer expiry breaks the MAC');
  const unknown = await fresh.get(
    `/sign-in/complete?login_response=${await signLoginResponse({ request: `account.admin.${exp}.${mac}`, aud: ISSUER, sub: 'frank' })}`,
  );
  t.equal(unknown.status, 400, 'an unknown destination is refused');

  // Expiry: AUTHORIZATION_REQUEST_TTL_SECONDS after the start.
  const late = new User('gina');
  const lateStart = await late.get('/account/apps');
  const later = Math.floor(clock.now.getTime() / 1000) + 601;
  // The host's answer itself is fresh at the moved clock; only the state has expired.
  const lateAnswer = await answerLoginRequest(lateStart.location!, { sub: 'gina', iat: later, exp: later + 60 });
  clock.now = new Date(later * 1000);
  try {
    const expired = await late.get(lateAnswer);
    t.equal(expired.status, 400, 'an expired state is refused');
    t.match(expired.body, 'has expired');
  } finally {
    clock.now = new Date();
  }

  // The host declines: an error page, no session.
  const declined = new User('hank');
  const declinedStart = await declined.get('/account/apps');
  const count = await sessionCount(app);
  const refused = await declined.get(
    await answerLoginRequest(declinedStart.location!, { sub: undefined, error: 'access_denied' }),
  );
  t.equal(refused.status, 403);
  t.match(refused.body, 'Access denied');
  t.equal(await sessionCount(app), count, 'no session');
});

t.test('list, revoke, and what revoking ends', async (t) => {
  const alice = new User('alice');
  const bob = new User('bob');
  const aliceNotes = await alice.allow(notes, 'openid email read');
  const aliceCalendar = await alice.allow(calendar, 'write');
  const bobNotes = await bob.allow(notes, 'read');
  await bob.allow(bobsOnly, 'read');
  const refreshed = await refresh(notes, aliceNotes.refresh_token);
  t.equal(refreshed.status, 200, 'alice refreshes once (last used)');
  const aliceNotesRefresh = refreshed.body.refresh_token!;

  const page = await alice.appsPage();
  t.equal(page.status, 200);
  t.same(listed(page), ['Calendar', 'Notes'], "alice's apps, by name; none of bob's");
  t.notMatch(page.body, 'Photos of Bob', "another user's app is not shown");
  t.match(page.body, 'Read your data', 'a scope in the consent page words');
  t.match(page.body, 'Change your data');
  t.match(page.body, 'your email address', 'the personal data it sees');
  t.match(page.body, 'alice@example.com', 'with the value it sees');
  t.match(page.body, RESOURCE, 'the service');
  t.match(page.body, 'Allowed since');
  t.match(page.body, /<time datetime="\d{4}-\d\d-\d\dT[^"]+">/, 'since and last used as times');
  t.match(page.body, 'Signed in as');
  t.match(page.body, 'Alice');

  const bobPage = await bob.appsPage();
  t.same(listed(bobPage), ['Notes', 'Photos of Bob'], "bob's own apps");
  t.notMatch(bobPage.body, 'alice@example.com');

  // Alice revokes Notes.
  const csrf = User.csrfOf(page);
  const revoked = await alice.revoke({ client_id: notes.client_id, csrf });
  t.equal(revoked.status, 303);
  t.equal(revoked.location, `${ISSUER}/account/apps?revoked=${encodeURIComponent(notes.client_id)}`);
  const after = await alice.get(revoked.location!);
  t.same(listed(after), ['Calendar'], 'Notes is gone from the page');
  t.match(after.body, 'Notes no longer has access to your account.');

  const dead = await refresh(notes, aliceNotesRefresh);
  t.equal(dead.status, 400);
  t.equal(dead.body.error, 'invalid_grant', "the revoked app's refresh token fails");
  t.equal(await introspect(aliceNotes.access_token), false, 'its access tokens are inactive at /introspect');
  t.equal((await refresh(calendar, aliceCalendar.refresh_token)).status, 200, 'her other app still works');
  t.equal((await refresh(notes, bobNotes.refresh_token)).status, 200, "bob's grant to the same app still works");
  const consents = await app.database.db
    .selectFrom('consents')
    .select('client_id')
    .where('sub', '=', 'alice')
    .execute();
  t.same(
    consents.map((c) => c.client_id),
    [calendar.client_id],
    'her consent to Notes is forgotten',
  );
  const claims = await app.database.db
    .selectFrom('granted_claims')
    .select('client_id')
    .where('sub', '=', 'alice')
    .where('client_id', '=', notes.client_id)
    .execute();
  t.same(claims, [], 'the claims kept for /userinfo go too');

  // Back-channel logout: alice's session signed in to Notes, which registered a back-channel logout URI.
  await app.logoutDeliveries.idle();
  const tokens = received.map((form) => decodeJwt(form.get('logout_token')!));
  t.equal(tokens.length, 1, 'one logout token went to Notes');
  t.equal(tokens[0]?.sub, 'alice');
  t.equal(tokens[0]?.aud, notes.client_id);
  t.ok(tokens[0]?.sid, 'naming the session');
  t.equal((await listLogoutDeliveries(app.database.db)).length, 0, 'nothing left queued');

  // The audit event (docs/audit.md): its log line at once, and its audit_events row once flushed.
  const audit = logs
    .map((line) => line.audit as Record<string, unknown> | undefined)
    .filter((event) => event?.type === 'consent.revoked' && event.actor === 'user');
  t.match(
    audit,
    [{ type: 'consent.revoked', actor: 'user', subject: 'alice', client_id: notes.client_id }],
    'the audit log line: the user revoked Notes',
  );
  const ended = { via: 'connected_apps', refresh: 2, codes: 0, consents: 1, logout_queued: 1 };
  t.same(
    audit.map((event) => event?.details),
    [ended],
    'with what it ended (both generations of the chain, the consent, one logout token)',
  );
  await app.audit.flush();
  const rows = await app.database.db
    .selectFrom('audit_events')
    .select(['actor', 'subject', 'client_id', 'details'])
    .where('type', '=', 'consent.revoked')
    .where('client_id', '=', notes.client_id)
    .execute();
  t.same(
    rows.map((row) => ({ ...row, details: typeof row.details === 'string' ? JSON.parse(row.details) : row.details })),
    [{ actor: 'user', subject: 'alice', client_id: notes.client_id, details: ended }],
    'and the audit_events row, queryable by subject and client',
  );
  t.notMatch(JSON.stringify(logs), csrf, 'the CSRF token is never logged');

  // Her Gatehouse session stays; a new authorization asks for consent again.
  const still = await alice.get('/account/apps');
  t.equal(still.status, 200, 'still signed in at Gatehouse');
  const again = await alice.allow(notes, 'read');
  t.ok(again.refresh_token, 'allowing it again works');
  t.same(listed(await alice.get('/account/apps')), ['Calendar', 'Notes']);

  // A double submit (the form posted again): nothing more to end, same answer.
  const twice = await alice.revoke({ client_id: bobsOnly.client_id, csrf });
  t.equal(twice.status, 303);
  t.equal((await refresh(bobsOnly, (await bob.allow(bobsOnly, 'read')).refresh_token)).status, 200, "bob's untouched");
});

t.test('forged revocations are refused and lose nothing', async (t) => {
  const ivy = new User('ivy');
  const jack = new User('jack');
  const ivyTokens = await ivy.allow(calendar, 'read');
  await jack.allow(calendar, 'read');
  const ivyPage = await ivy.appsPage();
  const jackPage = await jack.appsPage();
  const ivyCsrf = User.csrfOf(ivyPage);
  const jackCsrf = User.csrfOf(jackPage);
  t.not(ivyCsrf, jackCsrf, 'each session has its own token');
  const form = { client_id: calendar.client_id };
  const refusals: Array<[string, Promise<Page>, number]> = [
    ['no token', ivy.revoke(form), 400],
    ['an empty token', ivy.revoke({ ...form, csrf: '' }), 400],
    [
      'a wrong token',
      ivy.revoke({ ...form, csrf: ivyCsrf.slice(0, -2) + (ivyCsrf.endsWith('AA') ? 'BB' : 'AA') }),
      403,
    ],
    ['a token of the wrong form', ivy.revoke({ ...form, csrf: 'x' }), 403],
    ["another user's token", ivy.revoke({ ...form, csrf: jackCsrf }), 403],
    ['a cross-site post', ivy.revoke({ ...form, csrf: ivyCsrf }, { 'sec-fetch-site': 'cross-site' }), 403],
    ['a same-site post', ivy.revoke({ ...form, csrf: ivyCsrf }, { 'sec-fetch-site': 'same-site' }), 403],
    ['a foreign Origin', ivy.revoke({ ...form, csrf: ivyCsrf }, { origin: 'https://evil.example' }), 403],
    ['no session', new User('nobody').revoke({ ...form, csrf: ivyCsrf }), 403],
  ];
  for (const [what, pending, status] of refusals) {
    const res = await pending;
    t.equal(res.status, status, `${what}: refused`);
    t.equal(res.location, null, `${what}: no redirect`);
  }
  const get = await ivy.request('/account/apps/revoke', { method: 'GET' });
  t.equal(get.status, 405, 'revoking is POST only');
  const json = await app.inject({
    method: 'POST',
    url: '/account/apps/revoke',
    headers: { 'content-type': 'application/json', cookie: ivy.jar.header(ISSUER)! },
    payload: JSON.stringify({ ...form, csrf: ivyCsrf }),
  });
  t.equal(json.statusCode, 415, 'only a form body');

  t.same(listed(await ivy.get('/account/apps')), ['Calendar'], 'the app is still listed');
  t.equal((await refresh(calendar, ivyTokens.refresh_token)).status, 200, 'and its refresh token still works');

  // The page's own form: Origin null (a no-referrer page's same-origin POST) with the right token works.
  const ok = await ivy.revoke({ ...form, csrf: ivyCsrf }, { origin: 'null' });
  t.equal(ok.status, 303, "the page's own POST is accepted");
  t.same(listed(await jack.get('/account/apps')), ['Calendar'], "jack's grant is his own");
});

t.test(
  'a first-party app that skips consent is listed by its refresh chain; a disabled app can still be revoked',
  async (t) => {
    const firstParty = await publicClient('Company Portal', { skip_consent: true });
    const kim = new User('kim');
    const tokens = await kim.allow(firstParty, 'read');
    const page = await kim.appsPage();
    t.same(listed(page), ['Company Portal'], 'listed without a consent row');
    t.match(page.body, /Allowed since<\/dt><dd><time datetime=/, 'since its sign-in');

    await app.clientAdmin.setDisabled(firstParty.client_id, true);
    const disabled = await kim.get('/account/apps');
    t.match(disabled.body, 'turned off by the operator', 'the page says the app is disabled');
    const revoked = await kim.revoke({ client_id: firstParty.client_id, csrf: User.csrfOf(disabled) });
    t.equal(revoked.status, 303);
    t.same(listed(await kim.get('/account/apps')), [], 'gone');
    await app.clientAdmin.setDisabled(firstParty.client_id, false);
    t.equal(
      (await refresh(firstParty, tokens.refresh_token)).body.error,
      'invalid_grant',
      'enabled again, its chain stays revoked',
    );
  },
);

t.test("the page speaks the browser's language, and names the services", async (t) => {
  const lena = new User('lena');
  await lena.allow(notes, 'openid email read');
  t.equal((await lena.appsPage()).status, 200, 'signed in');

  const german = await lena.getIn('de-DE,de;q=0.9,en;q=0.5');
  t.equal(german.status, 200);
  t.match(german.body, '<html lang="de">', 'German by Accept-Language');
  t.match(german.body, /<title>Verbundene Apps · /, 'the title');
  t.match(german.body, '<h1>Verbundene Apps</h1>', 'the heading');
  t.match(german.body, 'Angemeldet als');
  t.match(german.body, '>Zugriff widerrufen</button>', 'the revoke button');
  t.match(german.body, 'aria-label="Zugriff für Notes widerrufen"', "the button's accessible name");
  t.match(german.body, 'Erlaubt seit');
  t.match(german.body, 'Zuletzt verwendet');
  t.match(
    german.body,
    /<time datetime="[^"]+">\d\d\.\d\d\.\d{4}, \d\d:\d\d UTC<\/time>/,
    'dates written the German way',
  );
  t.match(german.body, 'Ihre E-Mail-Adresse', "a standard identity scope in the consent page's German words");
  t.match(german.body, 'Bei diesem Dienst');
  t.notMatch(german.body, 'Connected apps', 'no English left');
  t.notMatch(german.body, 'Revoke access');
  t.notMatch(german.body, 'your email address');
  t.match(german.headers.vary, /Accept-Language/, 'a shared cache keeps the languages apart');
  t.match(german.body, '<title>Verbundene Apps · Acme &lt;Corp&gt;</title>', 'the brand name, escaped');
  t.match(german.body, '<span class="brand-name">Acme &lt;Corp&gt;</span>');
  t.notMatch(german.body, 'Acme <Corp>');

  const japanese = await lena.getIn('ja');
  t.match(japanese.body, '<html lang="ja">', 'Japanese by Accept-Language');
  t.match(japanese.body, '<h1>連携中のアプリ</h1>');
  t.match(japanese.body, '>アクセス権を取り消す</button>');
  t.match(japanese.body, 'あなたのメールアドレス');
  t.match(
    japanese.body,
    // Japanese writes the hour without a leading zero (CLDR ja: "H:mm"): 0:15, 9:05, 13:40.
    /<time datetime="[^"]+">\d{4}\/\d\d\/\d\d (?:1?\d|2[0-3]):\d\d UTC<\/time>/,
    'dates written the Japanese way',
  );

  for (const language of ['pt-BR,pt;q=0.9', 'zz', '*', '']) {
    const english = await lena.getIn(language);
    t.match(english.body, '<html lang="en">', `English for "${language}"`);
    t.match(english.body, '<h1>Connected apps</h1>');
    t.match(english.body, '>Revoke access</button>');
    t.match(english.body, 'aria-label="Revoke access for Notes"');
    t.match(english.body, 'your email address');
    t.match(
      english.body,
      /<time datetime="[^"]+">\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC<\/time>/,
      'dates as before',
    );
  }
  const preferred = await lena.getIn('pt;q=1, fr;q=0.8, de;q=0.5');
  t.match(preferred.body, '<html lang="fr">', 'the most preferred supported language');
  t.match(preferred.body, '<h1>Applications connectées</h1>');
  t.match(preferred.body, 'Autorisée depuis');
  const ignored = await lena.getIn('de', '/account/apps?ui_locales=ja');
  t.match(ignored.body, '<html lang="de">', 'no client asks here: a ui_locales parameter does not choose the language');

  // RESOURCE_NAMES: the display name, with the URI beneath, as on the consent page.
  t.match(
    german.body,
    `<li><span class="resource-name">Example Notes API</span> <code>${RESOURCE}</code></li>`,
    'the service by its display name, the URI beneath',
  );
  t.match(japanese.body, '<span class="resource-name">Example Notes API</span>');

  // The revoked status message, in the browser's language.
  const revoked = await lena.revoke({ client_id: notes.client_id, csrf: User.csrfOf(german) });
  t.equal(revoked.status, 303);
  const germanStatus = await lena.getIn('de', revoked.location!);
  t.match(
    germanStatus.body,
    /role="status">\s*<p>Notes hat keinen Zugriff mehr auf Ihr Konto\.<\/p>/,
    'said in German',
  );
  t.match(germanStatus.body, 'Keine App hat Zugriff auf Ihr Konto.', 'and the empty page too');
  const japaneseStatus = await lena.getIn('ja', revoked.location!);
  t.match(japaneseStatus.body, 'Notes はあなたのアカウントにアクセスできなくなりました。', 'in Japanese');
  const englishStatus = await lena.getIn('', revoked.location!);
  t.match(englishStatus.body, 'Notes no longer has access to your account.', 'and in English');
  t.match(englishStatus.body, 'No apps have access to your account.');
});

t.test('a name with markup stays text inside the translated messages', async (t) => {
  const odd = await publicClient('Trip <Planner> & "Co"');
  const mia = new User('mia');
  await mia.allow(odd, 'read');
  t.equal((await mia.appsPage()).status, 200, 'signed in');
  const escaped = 'Trip &lt;Planner&gt; &amp; &quot;Co&quot;';
  const french = await mia.getIn('fr');
  t.match(french.body, '<html lang="fr">');
  t.match(french.body, `aria-label="Révoquer l’accès de ${escaped}"`, "the button's accessible name");
  t.match(french.body, '<span class="brand-name">Acme &lt;Corp&gt;</span>', 'the brand name, escaped');
  t.notMatch(french.body, '<Planner>');
  t.notMatch(french.body, 'Acme <Corp>');
  const revoked = await mia.revoke({ client_id: odd.client_id, csrf: User.csrfOf(french) });
  const status = await mia.getIn('es', revoked.location!);
  t.match(status.body, `<p>${escaped} ya no tiene acceso a tu cuenta.</p>`, 'the revoked message, in Spanish');
  t.notMatch(status.body, '<Planner>');
});
