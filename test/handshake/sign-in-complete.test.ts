import t from 'tap';
import { hashSecret } from '../../src/oauth/secrets.js';
import { HOST_SECRET, signLoginResponse, unsecuredJwt } from '../fixtures/host.js';
import { buildTestApp } from '../helper.js';
import {
  BIND_COOKIE,
  ISSUER,
  REDIRECT_URI,
  SESSION_COOKIE,
  complete,
  errorDescription,
  handshakeEnv,
  shown,
  pendingRequest,
  sessionCount,
  webClient,
} from '../fixtures/handshake.js';

const now = () => Math.floor(Date.now() / 1000);

t.test('a good login_response creates a session (cookie only, hash stored) and continues to consent', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  const app = await buildTestApp(t, handshakeEnv({ LOG_LEVEL: 'info' }), { logs });
  const client = await webClient(app);
  const { pending, cookies } = await pendingRequest(app, client);
  const authTime = now() - 20;
  const jwt = await signLoginResponse({
    request: pending.id,
    aud: ISSUER,
    sub: 'user-42',
    auth_time: authTime,
    amr: ['pwd', 'otp'],
    acr: 'urn:example:mfa',
    claims: { email: 'ada@example.com', name: 'Ada', nested: { list: [1, 2] } },
  });
  const before = await sessionCount(app);
  const res = await complete(app, jwt, cookies);

  t.equal(res.statusCode, 303, res.body);
  t.equal(res.headers.location, `${ISSUER}/consent?request=${encodeURIComponent(pending.id)}`);
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(res.headers['referrer-policy'], 'no-referrer');
  t.equal(await sessionCount(app), before + 1);

  const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE);
  t.ok(cookie, 'the __Host- session cookie is set over https');
  t.match(cookie!.value, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
  t.equal(cookie!.httpOnly, true);
  t.equal(cookie!.secure, true);
  t.equal(cookie!.sameSite, 'Lax');
  t.equal(cookie!.path, '/');
  t.equal(cookie!.domain, undefined, '__Host- cookies have no Domain');
  t.equal(cookie!.maxAge, 1209600, 'lives as long as the session can (SESSION_ABSOLUTE_TTL_SECONDS)');

  const rows = await app.database.db.selectFrom('sessions').selectAll().where('sub', '=', 'user-42').execute();
  t.equal(rows.length, 1);
  const row = rows[0]!;
  t.equal(row.id_hash, hashSecret(cookie!.value), 'only the hash of the cookie value is stored');
  t.notOk(JSON.stringify(row).includes(cookie!.value), 'the cookie value appears nowhere in the row');
  t.equal(row.auth_time.getTime(), authTime * 1000);
  t.same(row.amr, ['pwd', 'otp']);
  t.equal(row.acr, 'urn:example:mfa');
  t.same(row.claims, { email: 'ada@example.com', name: 'Ada', nested: { list: [1, 2] } });
  t.ok(Math.abs(row.expires_at.getTime() - Date.now() - 1209600_000) < 10_000);

  const answered = await app.database.db
    .selectFrom('authorization_requests')
    .selectAll()
    .where('id', '=', pending.id)
    .executeTakeFirstOrThrow();
  t.ok(answered.answered_at, 'the request is marked answered');
  t.equal(answered.session_hash, row.id_hash, 'and tied to the new session');
  t.equal(answered.completed_at, null, 'still open for consent');

  const current = await app.inject({ method: 'GET', url: '/sign-out', cookies: { [SESSION_COOKIE]: cookie!.value } });
  t.equal(current.statusCode, 200, 'the session cookie identifies the session (sign-out finds it)');

  const text = JSON.stringify(logs);
  t.notOk(text.includes(jwt), 'the login_response is never logged');
  t.notOk(text.includes(jwt.split('.')[2]!), 'not even its signature');
  t.notOk(text.includes(cookie!.value), 'the session cookie is never logged');
});

t.test('a first-party client that skips consent gets its code straight away, with state and iss', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app, { skip_consent: true });
  const { pending, cookies } = await pendingRequest(app, client);
  const res = await complete(
    app,
    await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'user-fp' }),
    cookies,
  );
  t.equal(res.statusCode, 303, res.body);
  const location = new URL(String(res.headers.location));
  t.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
  t.match(location.searchParams.get('code'), /^[A-Za-z0-9_-]{43}$/);
  t.equal(location.searchParams.get('state'), pending.state);
  t.equal(location.searchParams.get('iss'), ISSUER, 'RFC 9207');
  t.ok(res.cookies.find((c) => c.name === SESSION_COOKIE));
});

t.test('the host may answer by POSTing a form', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const { pending, cookies } = await pendingRequest(app, client);
  const res = await complete(
    app,
    await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'user-post' }),
    cookies,
    'POST',
  );
  t.equal(res.statusCode, 303, res.body);
  t.equal(res.headers.location, `${ISSUER}/consent?request=${encodeURIComponent(pending.id)}`);

  const json = await app.inject({
    method: 'POST',
    url: '/sign-in/complete',
    cookies,
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ login_response: 'x' }),
  });
  t.equal(json.statusCode, 415, 'only a form body');
  t.match(json.headers['content-type'], /^text\/html/, 'as an error page');
});

t.test(
  'the host declines: access_denied / login_required go to the client with state and iss; no session',
  async (t) => {
    const app = await buildTestApp(t, handshakeEnv());
    const client = await webClient(app);
    for (const [error, description, expected] of [
      ['access_denied', undefined, 'the user or the host app declined the sign-in'],
      ['login_required', 'Not signed in', 'Not signed in'],
      ['access_denied', 'bad "quote"', 'the user or the host app declined the sign-in'],
    ] as const) {
      const { pending, cookies } = await pendingRequest(app, client);
      const before = await sessionCount(app);
      const jwt = await signLoginResponse({ request: pending.id, aud: ISSUER, error, error_description: description });
      const res = await complete(app, jwt, cookies);
      t.equal(res.statusCode, 303, `${error}: ${res.body}`);
      const location = new URL(String(res.headers.location));
      t.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
      t.equal(location.searchParams.get('error'), error);
      t.equal(
        location.searchParams.get('error_description'),
        expected,
        'passed on only when RFC 6749 allows its characters',
      );
      t.equal(location.searchParams.get('state'), pending.state);
      t.equal(location.searchParams.get('iss'), ISSUER);
      t.equal(res.headers['cache-control'], 'no-store');
      t.equal(await sessionCount(app), before, 'no session');
      t.notOk(res.cookies.find((c) => c.name === SESSION_COOKIE));
      const again = await complete(app, jwt, cookies);
      t.equal(again.statusCode, 400, 'the request is finished: the answer cannot be replayed');
    }
  },
);

t.test('refused answers: each gets its documented error page (400, never a redirect) and no session', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const { pending, cookies } = await pendingRequest(app, client);
  const good = { request: pending.id, aud: ISSUER, sub: 'user-refused' };
  const n = now();
  const cases: Array<[string, Promise<string> | string, string]> = [
    [
      'forged signature',
      signLoginResponse(good, { secret: `${HOST_SECRET}-not-it` }),
      'the login_response signature does not verify',
    ],
    [
      'alg none',
      unsecuredJwt({ iss: 'host-app', ...good, iat: n, exp: n + 60 }),
      'login_response must be signed with HS256',
    ],
    [
      'HS384 with the right secret',
      signLoginResponse(good, { secret: HOST_SECRET, header: { alg: 'HS384' } }),
      'login_response must be signed with HS256',
    ],
    ['not a JWT', 'not.a.jwt', 'login_response is not a valid signed JWT (RFC 7515 compact serialization)'],
    [
      'missing typ',
      signLoginResponse(good, { secret: HOST_SECRET, header: { typ: undefined } }),
      'login_response must have the JWT header typ "login-response+jwt" (RFC 8725 §3.11)',
    ],
    [
      'another JWT type from the same host',
      signLoginResponse(good, { secret: HOST_SECRET, header: { typ: 'JWT' } }),
      'login_response must have the JWT header typ "login-response+jwt" (RFC 8725 §3.11)',
    ],
    [
      'login_request typ',
      signLoginResponse(good, { secret: HOST_SECRET, header: { typ: 'login-request+jwt' } }),
      'login_response must have the JWT header typ "login-response+jwt" (RFC 8725 §3.11)',
    ],
    [
      'wrong iss',
      signLoginResponse({ ...good, iss: 'other-host' }),
      'login_response iss is not the configured host (HOST_ID)',
    ],
    [
      'no iss',
      signLoginResponse({ ...good, iss: undefined }),
      'login_response iss is not the configured host (HOST_ID)',
    ],
    [
      'wrong aud',
      signLoginResponse({ ...good, aud: 'https://other.example.com' }),
      'login_response aud is not the issuer of this server',
    ],
    [
      'aud array without us',
      signLoginResponse({ ...good, aud: ['https://other.example.com'] }),
      'login_response aud is not the issuer of this server',
    ],
    ['no iat', signLoginResponse({ ...good, iat: undefined }), 'login_response must have a numeric iat'],
    ['string exp', signLoginResponse({ ...good, exp: String(n + 60) }), 'login_response must have a numeric exp'],
    ['expired', signLoginResponse({ ...good, iat: n - 200, exp: n - 100 }), 'login_response has expired'],
    [
      'iat in the future',
      signLoginResponse({ ...good, iat: n + 120, exp: n + 180 }),
      'login_response was issued in the future (check the clock of the host)',
    ],
    [
      'lifetime too long',
      signLoginResponse({ ...good, iat: n, exp: n + 301 }),
      'login_response must expire within 300 seconds of iat',
    ],
    [
      'exp before iat',
      signLoginResponse({ ...good, iat: n + 10, exp: n + 5 }),
      'login_response must expire within 300 seconds of iat',
    ],
    [
      'no request',
      signLoginResponse({ ...good, request: undefined as unknown as string }),
      'login_response must have a request claim naming the login_request jti it answers',
    ],
    [
      'unknown request',
      signLoginResponse({ ...good, request: 'no-such-request' }),
      'the sign-in request this answer names is unknown, has expired or is already finished; start again from the application',
    ],
    [
      'empty sub',
      signLoginResponse({ ...good, sub: '' }),
      'login_response sub must be a non-empty string of at most 255 characters',
    ],
    [
      'long sub',
      signLoginResponse({ ...good, sub: 'u'.repeat(256) }),
      'login_response sub must be a non-empty string of at most 255 characters',
    ],
    [
      'numeric sub',
      signLoginResponse({ ...good, sub: 42 as unknown as string }),
      'login_response sub must be a non-empty string of at most 255 characters',
    ],
    [
      'sub and error',
      signLoginResponse({ ...good, error: 'access_denied' }),
      'login_response must carry either sub or error, not both and not neither',
    ],
    [
      'neither sub nor error',
      signLoginResponse({ ...good, sub: undefined }),
      'login_response must carry either sub or error, not both and not neither',
    ],
    [
      'unknown error',
      signLoginResponse({ ...good, sub: undefined, error: 'server_error' }),
      'login_response error must be one of access_denied, login_required',
    ],
    [
      'auth_time not a number',
      signLoginResponse({ ...good, auth_time: 'yesterday' }),
      'login_response auth_time must be a NumericDate (seconds)',
    ],
    [
      'auth_time in the future',
      signLoginResponse({ ...good, auth_time: n + 3600 }),
      'login_response auth_time is in the future',
    ],
    [
      'amr not an array',
      signLoginResponse({ ...good, amr: 'pwd' }),
      'login_response amr must be an array of at most 16 strings',
    ],
    [
      'acr not a string',
      signLoginResponse({ ...good, acr: 2 }),
      'login_response acr must be a string of at most 255 characters',
    ],
    ['claims an array', signLoginResponse({ ...good, claims: ['x'] }), 'login_response claims must be a JSON object'],
    // Strings Postgres cannot store must be a bad answer, not a 500 on every retry.
    [
      'NUL in sub',
      signLoginResponse({ ...good, sub: 'alice\u0000' }),
      'login_response sub must be a non-empty string of at most 255 characters',
    ],
    [
      'NUL in amr',
      signLoginResponse({ ...good, amr: ['pwd\u0000'] }),
      'login_response amr must be an array of at most 16 strings',
    ],
    [
      'NUL in a claim',
      signLoginResponse({ ...good, claims: { name: 'A\u0000' } }),
      'login_response claims must not contain NUL characters or unpaired surrogates',
    ],
    [
      'NUL in a claim name',
      signLoginResponse({ ...good, claims: { 'na\u0000me': 'A' } }),
      'login_response claims must not contain NUL characters or unpaired surrogates',
    ],
    [
      'lone surrogate in a nested claim',
      signLoginResponse({ ...good, claims: { address: { city: 'x\uD800' } } }),
      'login_response claims must not contain NUL characters or unpaired surrogates',
    ],
  ];
  const before = await sessionCount(app);
  for (const [name, token, description] of cases) {
    const res = await complete(app, await token, cookies);
    t.equal(res.statusCode, 400, name);
    t.notOk(res.headers.location, `${name}: never a redirect`);
    t.match(res.headers['content-type'], /^text\/html/, `${name}: an error page`);
    t.equal(errorDescription(res), shown(description), name);
    t.equal(res.headers['cache-control'], 'no-store', name);
    t.equal(res.headers['referrer-policy'], 'no-referrer', name);
    t.notOk(
      res.cookies.find((c) => c.name === SESSION_COOKIE),
      `${name}: no session cookie`,
    );
  }
  t.equal(await sessionCount(app), before, 'no refused answer created a session');
  const row = await app.database.db
    .selectFrom('authorization_requests')
    .selectAll()
    .where('id', '=', pending.id)
    .executeTakeFirstOrThrow();
  t.equal(row.answered_at, null, 'and the request is still waiting for a good answer');
  const ok = await complete(app, await signLoginResponse(good), cookies);
  t.equal(ok.statusCode, 303, 'the good answer still works afterwards');
});

t.test('bad parameters: missing, repeated, oversized login_response', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const cases: Array<[string, string, string]> = [
    ['missing', '/sign-in/complete', 'missing querystring parameter: login_response'],
    ['empty', '/sign-in/complete?login_response=', 'querystring login_response must NOT have fewer than 1 characters'],
    ['repeated', '/sign-in/complete?login_response=a.b.c&login_response=d.e.f', 'parameter login_response is repeated'],
    [
      'oversized',
      `/sign-in/complete?login_response=${'a'.repeat(8193)}`,
      'querystring login_response must NOT have more than 8192 characters',
    ],
  ];
  for (const [name, url, description] of cases) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 400, name);
    t.equal(errorDescription(res), shown(description), name);
  }
  const post = await app.inject({
    method: 'POST',
    url: '/sign-in/complete',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'login_response=a.b.c&login_response=d.e.f',
  });
  t.equal(post.statusCode, 400);
  t.equal(errorDescription(post), shown('parameter login_response is repeated'));
});

t.test('an answer brought to another browser is refused and creates nothing', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const { pending } = await pendingRequest(app, client);
  const jwt = await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'victim-or-attacker' });
  const before = await sessionCount(app);
  const message =
    'this sign-in was started in another browser (or its cookie has expired); start again from the application';
  for (const [name, cookies] of [
    ['no binding cookie', {}],
    ['another request’s binding cookie', { [BIND_COOKIE]: (await pendingRequest(app, client)).binding }],
    ['the binding cookie without its __Host- prefix', { gatehouse_bind: 'x'.repeat(43) }],
  ] as const) {
    const res = await complete(app, jwt, cookies);
    t.equal(res.statusCode, 400, name);
    t.equal(errorDescription(res), shown(message), name);
    t.notOk(
      res.cookies.find((c) => c.name === SESSION_COOKIE),
      name,
    );
  }
  t.equal(await sessionCount(app), before, 'no session');
  const row = await app.database.db
    .selectFrom('authorization_requests')
    .selectAll()
    .where('id', '=', pending.id)
    .executeTakeFirstOrThrow();
  t.equal(row.answered_at, null, 'the request was not consumed by the attempt');
});

t.test('replay: an answer is used once; a replay or a concurrent copy leaves no session behind', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const { pending, cookies } = await pendingRequest(app, client);
  const jwt = await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'user-replay' });
  const first = await complete(app, jwt, cookies);
  t.equal(first.statusCode, 303);
  const sessionCookie = first.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
  const afterFirst = await sessionCount(app);

  const replay = await complete(app, jwt, { ...cookies, [SESSION_COOKIE]: sessionCookie });
  t.equal(replay.statusCode, 400);
  t.equal(
    errorDescription(replay),
    shown('this sign-in answer has already been used; start again from the application'),
  );
  t.notOk(
    replay.cookies.find((c) => c.name === SESSION_COOKIE),
    'the browser keeps its session cookie',
  );
  t.equal(await sessionCount(app), afterFirst, 'the replay created nothing');
  const stillLive = await app.database.db
    .selectFrom('sessions')
    .select('revoked_at')
    .where('id_hash', '=', hashSecret(sessionCookie))
    .executeTakeFirstOrThrow();
  t.equal(stillLive.revoked_at, null, 'and did not end the session the first answer created');

  // Two copies of one answer at once: exactly one wins, and only one session exists.
  const race = await pendingRequest(app, client);
  const raceJwt = await signLoginResponse({ request: race.pending.id, aud: ISSUER, sub: 'user-race' });
  const results = await Promise.all([1, 2, 3, 4].map(() => complete(app, raceJwt, race.cookies)));
  t.same(results.map((r) => r.statusCode).sort(), [303, 400, 400, 400]);
  const raced = await app.database.db.selectFrom('sessions').selectAll().where('sub', '=', 'user-race').execute();
  t.equal(raced.length, 1, 'the losers left no session row');
});

t.test('completed and expired requests are refused', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const completed = await pendingRequest(app, client, { completed_at: new Date() });
  const expired = await pendingRequest(app, client, { expires_at: new Date(Date.now() - 1000) });
  const before = await sessionCount(app);
  for (const [name, { pending, cookies }] of [
    ['completed', completed],
    ['expired', expired],
  ] as const) {
    const res = await complete(
      app,
      await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'user-late' }),
      cookies,
    );
    t.equal(res.statusCode, 400, name);
    t.equal(
      errorDescription(res),
      shown(
        'the sign-in request this answer names is unknown, has expired or is already finished; start again from the application',
      ),
      name,
    );
  }
  t.equal(await sessionCount(app), before);
});

t.test('prompt=login and max_age need a fresh sign-in, else login_required at the client', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const cases: Array<[string, Record<string, unknown>, number, boolean]> = [
    ['prompt=login, signed in before the request', { prompt: 'login' }, -3600, false],
    ['prompt=login, signed in within the clock skew', { prompt: 'login' }, -20, true],
    ['prompt=login, signed in now', { prompt: 'login' }, 0, true],
    ['max_age=60, signed in 2 minutes ago', { max_age: 60 }, -120, false],
    ['max_age=60, signed in 80 s ago (within skew)', { max_age: 60 }, -80, true],
    ['max_age=600, signed in 5 minutes ago', { max_age: 600 }, -300, true],
    ['max_age=0, signed in now', { max_age: 0 }, 0, true],
  ];
  for (const [name, overrides, offset, fresh] of cases) {
    const { pending, cookies } = await pendingRequest(app, client, overrides);
    const before = await sessionCount(app);
    const res = await complete(
      app,
      await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'user-fresh', auth_time: now() + offset }),
      cookies,
    );
    t.equal(res.statusCode, 303, name);
    const location = new URL(String(res.headers.location));
    if (fresh) {
      t.equal(location.pathname, '/consent', name);
      t.equal(await sessionCount(app), before + 1, `${name}: session`);
    } else {
      t.equal(location.searchParams.get('error'), 'login_required', name);
      t.match(
        location.searchParams.get('error_description'),
        /did not re-authenticate the user as (prompt=login|max_age=60) requires/,
        name,
      );
      t.equal(location.searchParams.get('state'), pending.state, name);
      t.equal(await sessionCount(app), before, `${name}: no session`);
    }
  }
});

t.test('signing in again replaces the browser’s previous session', async (t) => {
  const app = await buildTestApp(t, handshakeEnv());
  const client = await webClient(app);
  const one = await pendingRequest(app, client);
  const first = await complete(
    app,
    await signLoginResponse({ request: one.pending.id, aud: ISSUER, sub: 'user-a' }),
    one.cookies,
  );
  const oldCookie = first.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
  const two = await pendingRequest(app, client, { prompt: 'login' });
  const second = await complete(app, await signLoginResponse({ request: two.pending.id, aud: ISSUER, sub: 'user-b' }), {
    ...two.cookies,
    [SESSION_COOKIE]: oldCookie,
  });
  t.equal(second.statusCode, 303);
  const newCookie = second.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
  t.not(newCookie, oldCookie, 'a fresh id, never the old one (no fixation)');
  const old = await app.database.db
    .selectFrom('sessions')
    .select('revoked_at')
    .where('id_hash', '=', hashSecret(oldCookie))
    .executeTakeFirstOrThrow();
  t.ok(old.revoked_at, 'the old session is revoked');
});
