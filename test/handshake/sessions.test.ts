import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { hashSecret } from '../../src/oauth/secrets.js';
import { signLoginResponse } from '../fixtures/host.js';
import { buildTestApp, testConfig, testDatabase } from '../helper.js';
import { ISSUER, SESSION_COOKIE, complete, handshakeEnv, pendingRequest, webClient } from '../fixtures/handshake.js';

/** Signs a user in through the handshake; returns the session cookie value. */
async function signIn(app: FastifyInstance, sub: string): Promise<string> {
  const client = await webClient(app);
  const { pending, cookies } = await pendingRequest(app, client);
  const res = await complete(app, await signLoginResponse({ request: pending.id, aud: ISSUER, sub }), cookies);
  if (res.statusCode !== 303) throw new Error(res.body);
  return res.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
}

/** What app.sessions.current sees for a browser holding this cookie. */
async function currentSub(app: FastifyInstance, cookie: string): Promise<string | null> {
  return (await app.sessions.current(cookie))?.sub ?? null;
}

function setRow(
  app: FastifyInstance,
  cookie: string,
  values: { last_seen_at?: Date; expires_at?: Date; revoked_at?: Date },
) {
  return app.database.db.updateTable('sessions').set(values).where('id_hash', '=', hashSecret(cookie)).execute();
}

t.test('current(): live sessions are found; revoked, absolutely expired and idle ones are not', async (t) => {
  const app = await buildTestApp(
    t,
    handshakeEnv({ SESSION_IDLE_TTL_SECONDS: '3600', SESSION_ABSOLUTE_TTL_SECONDS: '86400' }),
  );
  const live = await signIn(app, 'user-live');
  t.equal(await currentSub(app, live), 'user-live');

  const idle = await signIn(app, 'user-idle');
  await setRow(app, idle, { last_seen_at: new Date(Date.now() - 3601_000) });
  t.equal(await currentSub(app, idle), null, 'idle longer than SESSION_IDLE_TTL_SECONDS');

  const nearlyIdle = await signIn(app, 'user-nearly-idle');
  await setRow(app, nearlyIdle, { last_seen_at: new Date(Date.now() - 3500_000) });
  t.equal(await currentSub(app, nearlyIdle), 'user-nearly-idle', 'used within the idle TTL');

  const old = await signIn(app, 'user-old');
  await setRow(app, old, { expires_at: new Date(Date.now() - 1000) });
  t.equal(await currentSub(app, old), null, 'past the absolute expiry, however active');

  const revoked = await signIn(app, 'user-revoked');
  await setRow(app, revoked, { revoked_at: new Date() });
  t.equal(await currentSub(app, revoked), null, 'revoked');

  t.equal(await currentSub(app, 'A'.repeat(43)), null, 'unknown id');
  t.equal(await currentSub(app, 'not a session id'), null, 'malformed cookie');
});

t.test('current() refreshes last_seen_at at most once a minute', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const cookie = await signIn(app, 'user-touch');
  const lastSeen = async () =>
    (
      await app.database.db
        .selectFrom('sessions')
        .select('last_seen_at')
        .where('id_hash', '=', hashSecret(cookie))
        .executeTakeFirstOrThrow()
    ).last_seen_at.getTime();
  const fresh = await lastSeen();
  await currentSub(app, cookie);
  t.equal(await lastSeen(), fresh, 'used within the minute: no write');
  const twoMinutesAgo = new Date(Date.now() - 120_000);
  await setRow(app, cookie, { last_seen_at: twoMinutesAgo });
  await currentSub(app, cookie);
  t.ok((await lastSeen()) > Date.now() - 10_000, 'older than a minute: moved to now');
});

/** An app whose flow and sessions go by a clock the test moves (`advance`, in seconds), not by waiting. */
async function clockedApp(t: Tap.Test) {
  let now = Date.now();
  const app = await buildApp(
    testConfig(handshakeEnv({ SESSION_IDLE_TTL_SECONDS: '3600', SESSION_ABSOLUTE_TTL_SECONDS: '86400' })),
    { database: await testDatabase(), clock: () => new Date(now) },
  );
  t.teardown(() => app.close());
  await app.ready();
  return { app, now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

t.test('idle expiry and the last-seen write go by the injected clock', async (t) => {
  const { app, now, advance } = await clockedApp(t);
  const cookie = await signIn(app, 'user-clock');
  const lastSeen = async () =>
    (
      await app.database.db
        .selectFrom('sessions')
        .select('last_seen_at')
        .where('id_hash', '=', hashSecret(cookie))
        .executeTakeFirstOrThrow()
    ).last_seen_at.getTime();
  const signedInAt = now();
  t.equal(await lastSeen(), signedInAt, 'created at the clock’s time');
  advance(59);
  t.equal(await currentSub(app, cookie), 'user-clock');
  t.equal(await lastSeen(), signedInAt, 'used within the minute: no write');
  advance(3);
  t.equal(await currentSub(app, cookie), 'user-clock');
  t.equal(await lastSeen(), now(), 'older than a minute: moved to the clock’s now');
  advance(3599);
  t.equal(await currentSub(app, cookie), 'user-clock', 'used within the idle TTL');
  advance(3601);
  t.equal(await currentSub(app, cookie), null, 'idle longer than SESSION_IDLE_TTL_SECONDS');
});

t.test('absolute expiry goes by the injected clock, however active the session', async (t) => {
  const { app, advance } = await clockedApp(t);
  const cookie = await signIn(app, 'user-clock-active');
  for (let step = 0; step < 28; step++) {
    advance(3000);
    t.equal(await currentSub(app, cookie), 'user-clock-active', `used at ${(step + 1) * 3000} s`);
  }
  advance(2401);
  t.equal(await currentSub(app, cookie), null, 'past SESSION_ABSOLUTE_TTL_SECONDS');
});

t.test('revokeAllFor ends every session of a user, and only theirs', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const a1 = await signIn(app, 'user-all');
  const a2 = await signIn(app, 'user-all');
  const b = await signIn(app, 'user-other');
  t.equal(await app.sessions.revokeAllFor('user-all'), 2);
  t.equal(await currentSub(app, a1), null);
  t.equal(await currentSub(app, a2), null);
  t.equal(await currentSub(app, b), 'user-other');
  t.equal(await app.sessions.revokeAllFor('user-all'), 0, 'idempotent');
});

t.test('sign-out: revokes the session, clears the cookie, shows the signed-out page', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  for (const method of ['GET', 'POST'] as const) {
    const cookie = await signIn(app, `user-out-${method}`);
    const res = await app.inject({
      method,
      url: '/sign-out',
      cookies: { [SESSION_COOKIE]: cookie },
      ...(method === 'POST' ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' } : {}),
    });
    t.equal(res.statusCode, 200, method);
    t.match(res.headers['content-type'], /^text\/html/);
    t.match(res.body, /You are signed out/);
    t.equal(res.headers['cache-control'], 'no-store');
    const cleared = res.cookies.find((c) => c.name === SESSION_COOKIE);
    t.ok(cleared, `${method}: the cookie is cleared`);
    t.equal(cleared!.value, '');
    t.equal(cleared!.maxAge, 0);
    t.equal(cleared!.secure, true, '__Host- cookies can only be cleared with Secure and Path=/');
    t.equal(cleared!.path, '/');
    t.equal(await currentSub(app, cookie), null, `${method}: the session is revoked server-side`);
  }
  const none = await app.inject({ method: 'GET', url: '/sign-out' });
  t.equal(none.statusCode, 200, 'signing out without a session is fine');
});

t.test(
  'sign-out never open-redirects: post_logout_redirect_uri only when the client registered it exactly',
  async (t) => {
    const app = await buildTestApp(t, handshakeEnv());
    const client = await webClient(app);
    const other = await webClient(app, { post_logout_redirect_uris: ['https://other.example.com/bye'] });
    const disabled = await webClient(app);
    await app.clientAdmin.setDisabled(disabled.client_id, true);
    // Anyone can register a client when DCR is on: its own list is no proof the client asked for this redirect.
    const { client: registered } = await app.clientAdmin.create(
      {
        name: 'Self-registered',
        redirect_uris: ['https://app.example.com/cb'],
        post_logout_redirect_uris: ['https://evil.example/landing'],
        grant_types: ['authorization_code'],
      },
      { source: 'registration' },
    );
    const go = (params: Record<string, string>) =>
      app.inject({ method: 'GET', url: `/sign-out?${new URLSearchParams(params).toString()}` });

    const leaving = await signIn(app, 'user-leaving');
    const ok = await app.inject({
      method: 'GET',
      url: `/sign-out?${new URLSearchParams({ client_id: client.client_id, post_logout_redirect_uri: 'https://app.example.com/signed-out', state: 'xyz' })}`,
      cookies: { [SESSION_COOKIE]: leaving },
    });
    t.equal(ok.statusCode, 303);
    t.equal(ok.headers.location, 'https://app.example.com/signed-out?state=xyz');
    t.equal(ok.headers['cache-control'], 'no-store');
    t.ok(
      ok.cookies.find((c) => c.name === SESSION_COOKIE && c.value === ''),
      'signed out before leaving',
    );

    const refused: Array<[string, Record<string, string>]> = [
      ['no client_id', { post_logout_redirect_uri: 'https://app.example.com/signed-out' }],
      ['unknown client', { client_id: 'nope', post_logout_redirect_uri: 'https://app.example.com/signed-out' }],
      [
        'another client’s URI',
        { client_id: client.client_id, post_logout_redirect_uri: 'https://other.example.com/bye' },
      ],
      [
        'the client’s redirect_uri is not a post-logout URI',
        { client_id: client.client_id, post_logout_redirect_uri: 'https://app.example.com/cb' },
      ],
      [
        'a prefix match',
        { client_id: client.client_id, post_logout_redirect_uri: 'https://app.example.com/signed-out/../../evil' },
      ],
      [
        'an extra query',
        {
          client_id: client.client_id,
          post_logout_redirect_uri: 'https://app.example.com/signed-out?next=https://evil.example',
        },
      ],
      [
        'different case',
        { client_id: client.client_id, post_logout_redirect_uri: 'https://APP.example.com/signed-out' },
      ],
      ['an attacker URL', { client_id: other.client_id, post_logout_redirect_uri: 'https://evil.example/' }],
      [
        'disabled client',
        { client_id: disabled.client_id, post_logout_redirect_uri: 'https://app.example.com/signed-out' },
      ],
      [
        'a dynamically registered client’s own URI',
        { client_id: registered.client_id, post_logout_redirect_uri: 'https://evil.example/landing' },
      ],
    ];
    for (const [name, params] of refused) {
      const res = await go(params);
      t.equal(res.statusCode, 200, name);
      t.notOk(res.headers.location, `${name}: no redirect`);
      t.match(res.body, /You are signed out/, name);
      t.notOk(res.body.includes('evil'), `${name}: the URI is not even offered as a link`);
    }
    const repeated = await app.inject({ method: 'GET', url: `/sign-out?client_id=${client.client_id}&client_id=x` });
    t.equal(repeated.statusCode, 400, 'a repeated parameter is refused');
  },
);

t.test('logout CSRF: a link from another site asks first; HEAD never signs out', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const cookie = await signIn(app, 'user-csrf');
  const crossSite = await app.inject({
    method: 'GET',
    url: '/sign-out?client_id=abc&state=x%22y',
    cookies: { [SESSION_COOKIE]: cookie },
    headers: { 'sec-fetch-site': 'cross-site' },
  });
  t.equal(crossSite.statusCode, 200);
  t.match(crossSite.body, /<h1>Sign out\?<\/h1>/, 'a question, not a sign-out');
  t.match(crossSite.body, /<form method="post" action="\/sign-out">/);
  t.match(crossSite.body, /<input type="hidden" name="state" value="x&quot;y">/, 'the parameters ride along, escaped');
  t.notOk(
    crossSite.cookies.find((c) => c.name === SESSION_COOKIE),
    'the cookie is untouched',
  );
  t.equal(await currentSub(app, cookie), 'user-csrf', 'the session lives on');

  for (const url of ['/sign-out', '/sign-in/complete?login_response=a.b.c']) {
    const head = await app.inject({ method: 'HEAD', url, cookies: { [SESSION_COOKIE]: cookie } });
    t.equal(head.statusCode, 405, `HEAD ${url}: no such method here`);
    t.equal(head.headers.allow, 'GET, POST');
  }

  // An auto-submitting form on another site: no cookie travels, and the answer must not clear it either.
  const crossPost = await app.inject({
    method: 'POST',
    url: '/sign-out',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
    payload: 'state=s&junk=1',
  });
  t.match(crossPost.body, /<h1>Sign out\?<\/h1>/, 'a cross-site POST gets the question too');
  t.notOk(
    crossPost.cookies.find((c) => c.name === SESSION_COOKIE),
    'and no Set-Cookie that would clear the session',
  );
  t.notMatch(crossPost.body, /name="junk"/, 'only the sign-out parameters ride along');
  const noCookie = await app.inject({
    method: 'POST',
    url: '/sign-out',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: '',
  });
  t.notOk(
    noCookie.cookies.find((c) => c.name === SESSION_COOKIE),
    'a browser without the cookie gets no cookie-clearing header',
  );
  t.equal(await currentSub(app, cookie), 'user-csrf', 'HEAD ended nothing');

  // From Gatehouse's own page (same-origin) or the host's site (same-site), or typed in: signed out.
  const confirmed = await app.inject({
    method: 'POST',
    url: '/sign-out',
    cookies: { [SESSION_COOKIE]: cookie },
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
    payload: 'client_id=abc&state=x',
  });
  t.match(confirmed.body, /You are signed out/);
  t.equal(await currentSub(app, cookie), null);
  const other = await signIn(app, 'user-same-site');
  const sameSite = await app.inject({
    method: 'GET',
    url: '/sign-out',
    cookies: { [SESSION_COOKIE]: other },
    headers: { 'sec-fetch-site': 'same-site' },
  });
  t.match(sameSite.body, /You are signed out/, 'a link from the host app on a sibling subdomain signs out at once');
  t.equal(await currentSub(app, other), null);
});

t.test(
  'the sign-out question lets the confirmed POST redirect to a registered post-logout URI (CSP form-action)',
  async (t) => {
    const app = await buildTestApp(t, handshakeEnv());
    const { client } = await app.clientAdmin.create({
      name: 'Web',
      redirect_uris: ['https://app.example.com/cb'],
      post_logout_redirect_uris: ['https://app.example.com/signed-out'],
    });
    const cookie = await signIn(app, 'user-return');
    const query = new URLSearchParams({
      client_id: client.client_id,
      post_logout_redirect_uri: 'https://app.example.com/signed-out',
      state: 's',
    });
    const ask = await app.inject({
      method: 'GET',
      url: `/sign-out?${query}`,
      cookies: { [SESSION_COOKIE]: cookie },
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    t.match(
      String(ask.headers['content-security-policy']),
      /form-action 'self' https:\/\/app\.example\.com/,
      'the redirect after the POST is allowed',
    );
    const done = await app.inject({
      method: 'POST',
      url: '/sign-out',
      cookies: { [SESSION_COOKIE]: cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      payload: query.toString(),
    });
    t.equal(done.statusCode, 303);
    t.equal(done.headers.location, 'https://app.example.com/signed-out?state=s');
    t.equal(await currentSub(app, cookie), null);
  },
);
