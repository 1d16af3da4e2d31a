import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import { LOGOUT_STATE_COOKIE, SESSION_COOKIE, STATE_COOKIE, buildDemoClient } from '../../examples/demo-client/app.js';
import { freePort, hiddenField } from './support.js';
import { ISSUER } from '../kit/issuer.js';

/** Gatehouse's /token as seen from the demo client: answers whatever the test sets (a real socket, as the client uses fetch). */
async function tokenStub(
  t: Tap.Test,
): Promise<{ url: string; answer: (status: number, body: string, type?: string) => void; close: () => Promise<void> }> {
  let reply = { status: 200, body: '', type: 'application/json' };
  const stub = createServer(
    (_req, res) => void res.writeHead(reply.status, { 'content-type': reply.type }).end(reply.body),
  );
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const close = () => new Promise<void>((resolve) => (stub.listening ? stub.close(() => resolve()) : resolve()));
  t.teardown(close);
  return {
    url: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
    answer: (status, body, type = 'application/json') => void (reply = { status, body, type }),
    close,
  };
}

async function client(t: Tap.Test, backchannelUrl: string) {
  const app = await buildDemoClient({
    issuer: ISSUER,
    backchannelUrl,
    clientId: 'demo-client',
    redirectUri: 'http://127.0.0.1:4003/callback',
    resource: `${backchannelUrl}/api`,
    apiUrl: `${backchannelUrl}/api`,
  });
  t.teardown(() => app.close());
  return app;
}

/** Starts a sign-in and comes back to /callback with a code, as the browser would. */
async function callback(app: Awaited<ReturnType<typeof client>>) {
  const start = await app.inject({ method: 'GET', url: '/' });
  const state = start.cookies.find((c) => c.name === STATE_COOKIE)!.value;
  return app.inject({
    method: 'GET',
    url: `/callback?${new URLSearchParams({ code: 'c', state, iss: ISSUER })}`,
    cookies: { [STATE_COOKIE]: state },
  });
}

const accessToken = () =>
  new SignJWT({ sub: 'user-1', scope: 'read' })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
    .setExpirationTime('5m')
    .sign(new Uint8Array(32));

t.test('Gatehouse unreachable at the token endpoint: a friendly 502 page, not a 500', async (t) => {
  const app = await client(t, `http://127.0.0.1:${await freePort()}`);
  const res = await callback(app);
  t.equal(res.statusCode, 502, res.body);
  t.match(res.headers['content-type'], /^text\/html/);
  t.match(res.body, /Gatehouse could not be reached/);
  t.match(res.body, /Start again/);
});

t.test('an unexpected token response: a friendly 502 page, not a 500', async (t) => {
  const stub = await tokenStub(t);
  const app = await client(t, stub.url);
  const cases: Array<[string, number, string, string?]> = [
    ["a proxy's HTML error page", 502, '<html><body>502 Bad Gateway</body></html>', 'text/html'],
    ['200 with HTML', 200, '<html>maintenance</html>', 'text/html'],
    ['200 with a JSON array', 200, '[]'],
    ['200 without access_token', 200, '{"token_type":"Bearer"}'],
    [
      '200 with an access_token that is not a JWT',
      200,
      '{"access_token":"opaque","token_type":"Bearer","expires_in":300}',
    ],
    [
      '200 with another token_type',
      200,
      JSON.stringify({ access_token: await accessToken(), token_type: 'DPoP', expires_in: 300 }),
    ],
    ['an error status without an OAuth error', 500, '{"message":"boom"}'],
  ];
  for (const [name, status, body, type] of cases) {
    stub.answer(status, body, type);
    const res = await callback(app);
    t.equal(res.statusCode, 502, name);
    t.match(res.body, /Gatehouse answered with something unexpected/, name);
    t.notMatch(res.body, /maintenance|Bad Gateway|boom/, `${name}: the raw answer is not shown`);
  }
  stub.answer(400, '{"error":"invalid_grant","error_description":"the code has expired"}');
  const oauthError = await callback(app);
  t.equal(oauthError.statusCode, 400, 'an OAuth error is still shown as one');
  t.match(oauthError.body, /invalid_grant: the code has expired/);
});

t.test('signed in: an unreachable or odd Gatehouse on refresh is a message on the page', async (t) => {
  const stub = await tokenStub(t);
  const app = await client(t, stub.url);
  // expires_in is only RECOMMENDED (RFC 6749 §5.1); a huge one must not break the page either.
  stub.answer(
    200,
    JSON.stringify({ access_token: await accessToken(), token_type: 'Bearer', expires_in: 1e300, refresh_token: 'r1' }),
  );
  const signedIn = await callback(app);
  t.equal(signedIn.statusCode, 303, signedIn.body);
  const cookies = { [SESSION_COOKIE]: signedIn.cookies.find((c) => c.name === SESSION_COOKIE)!.value };
  const home = await app.inject({ method: 'GET', url: '/', cookies });
  t.equal(home.statusCode, 200, home.body);
  t.match(home.body, /user-1/);
  t.match(home.body, /Access token expires<\/dt><dd>not given/);
  const csrf = hiddenField(home.body, 'csrf');

  stub.answer(200, '<html>maintenance</html>', 'text/html');
  const odd = await app.inject({ method: 'POST', url: '/refresh', cookies, payload: { csrf } });
  t.equal(odd.statusCode, 303);
  t.match(
    (await app.inject({ method: 'GET', url: '/', cookies })).body,
    /Gatehouse answered with something unexpected/,
  );

  await stub.close();
  const down = await app.inject({ method: 'POST', url: '/refresh', cookies, payload: { csrf } });
  t.equal(down.statusCode, 303);
  const after = await app.inject({ method: 'GET', url: '/', cookies });
  t.equal(after.statusCode, 200);
  t.match(after.body, /Gatehouse could not be reached/);
  t.match(after.body, /user-1/, 'still signed in with the tokens it had');
});

t.test("with openid in the scope: the page shows the ID token's claims, escaped", async (t) => {
  const stub = await tokenStub(t);
  const app = await client(t, stub.url);
  const idToken = await new SignJWT({ sub: 'user-1', email: '<b>alice</b>@example.com', nonce: 'n' })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new Uint8Array(32));
  stub.answer(
    200,
    JSON.stringify({ access_token: await accessToken(), token_type: 'Bearer', expires_in: 300, id_token: idToken }),
  );
  const signedIn = await callback(app);
  const cookies = { [SESSION_COOKIE]: signedIn.cookies.find((c) => c.name === SESSION_COOKIE)!.value };
  const home = await app.inject({ method: 'GET', url: '/', cookies });
  t.match(home.body, /The ID token&#39;s claims|The ID token's claims/);
  t.match(home.body, /&lt;b&gt;alice&lt;\/b&gt;@example.com/, 'escaped');
  stub.answer(200, JSON.stringify({ access_token: await accessToken(), token_type: 'Bearer', id_token: 'x.y' }));
  t.equal((await callback(app)).statusCode, 502, 'an ID token that is not a JWT is an unexpected answer');
});

/**
 * OpenID Connect logout in the demo client: a stub Gatehouse serving a token endpoint and a JWKS (a real
 * ES256 key), so logout tokens are verified as the demo verifies Gatehouse's own.
 */
async function oidcStub(t: Tap.Test) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let tokenBody = '{}';
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json')
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(tokenBody);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const app = await buildDemoClient({
    issuer: ISSUER,
    backchannelUrl: url,
    clientId: 'demo-client',
    redirectUri: 'http://127.0.0.1:4003/callback',
    resource: `${url}/api`,
    apiUrl: `${url}/api`,
    scope: 'openid read',
  });
  t.teardown(() => app.close());

  /** A sign-in as `sub` in Gatehouse session `sid`: the ID token echoes the nonce the demo sent. */
  async function signIn(sub: string, sid: string, nonce?: string) {
    const start = await app.inject({ method: 'GET', url: '/' });
    const state = start.cookies.find((c) => c.name === STATE_COOKIE)!.value;
    const authorize = new URL(/href="([^"]+)">Sign in/.exec(start.body)![1]!.replaceAll('&amp;', '&'));
    const sent = authorize.searchParams.get('nonce');
    const idToken = await new SignJWT({ sub, sid, nonce: nonce ?? sent, aud: 'demo-client' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const access = await new SignJWT({ sub, scope: 'openid read' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setExpirationTime('5m')
      .sign(new Uint8Array(32));
    tokenBody = JSON.stringify({ access_token: access, token_type: 'Bearer', expires_in: 300, id_token: idToken });
    const res = await app.inject({
      method: 'GET',
      url: `/callback?${new URLSearchParams({ code: 'c', state, iss: ISSUER })}`,
      cookies: { [STATE_COOKIE]: state },
    });
    const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE)?.value;
    const cookies: Record<string, string> = cookie ? { [SESSION_COOKIE]: cookie } : {};
    return { res, sent, idToken, cookies };
  }

  const signedIn = async (cookies: Record<string, string>) =>
    /Signed in as/.test((await app.inject({ method: 'GET', url: '/', cookies })).body);

  function logoutToken(claims: Record<string, unknown>, header: Record<string, unknown> = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: ISSUER,
      aud: 'demo-client',
      iat: now,
      exp: now + 120,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
      jti: randomUUID(),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'logout+jwt', ...header })
      .sign(privateKey);
  }

  const postLogout = (form: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/backchannel-logout',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString(),
    });

  return { app, signIn, signedIn, logoutToken, postLogout, privateKey };
}

t.test('an ID token whose nonce is not the one sent is refused (OIDC Core §3.1.3.7)', async (t) => {
  const { signIn } = await oidcStub(t);
  const good = await signIn('user-1', 'sid-1');
  t.ok(good.sent, 'the authorization request carries a nonce');
  t.equal(good.res.statusCode, 303, 'the nonce echoed: signed in');
  const bad = await signIn('user-1', 'sid-1', 'another-nonce');
  t.equal(bad.res.statusCode, 502, 'another nonce: refused');
  t.same(bad.cookies, {}, 'and no session');
});

t.test('"Sign out everywhere": to the end_session_endpoint with the ID token, back with the state', async (t) => {
  const { app, signIn, signedIn } = await oidcStub(t);
  const { cookies, idToken } = await signIn('user-1', 'sid-1');
  const home = await app.inject({ method: 'GET', url: '/', cookies });
  t.match(home.body, /Sign out everywhere/);
  const csrf = hiddenField(home.body, 'csrf');

  const forged = await app.inject({ method: 'POST', url: '/sign-out', cookies, payload: { csrf: 'wrong' } });
  t.equal(forged.headers.location, '/', 'a wrong CSRF token goes nowhere');
  t.ok(await signedIn(cookies), 'and signs nobody out');

  const res = await app.inject({ method: 'POST', url: '/sign-out', cookies, payload: { csrf } });
  t.equal(res.statusCode, 303);
  const to = new URL(res.headers.location as string);
  t.equal(`${to.origin}${to.pathname}`, `${ISSUER}/sign-out`);
  t.equal(to.searchParams.get('id_token_hint'), idToken, 'id_token_hint is the ID token');
  t.equal(to.searchParams.get('client_id'), 'demo-client');
  t.equal(to.searchParams.get('post_logout_redirect_uri'), 'http://127.0.0.1:4003/signed-out');
  const state = to.searchParams.get('state')!;
  t.equal(res.cookies.find((c) => c.name === LOGOUT_STATE_COOKIE)?.value, state, 'the state is bound to the browser');
  t.notOk(await signedIn(cookies), 'the local session is gone at once');

  const back = await app.inject({
    method: 'GET',
    url: `/signed-out?state=${state}`,
    cookies: { [LOGOUT_STATE_COOKIE]: state },
  });
  t.equal(back.statusCode, 200);
  t.match(back.body, /Signed out everywhere/);
  const stray = await app.inject({
    method: 'GET',
    url: '/signed-out?state=other',
    cookies: { [LOGOUT_STATE_COOKIE]: state },
  });
  t.equal(stray.statusCode, 303, 'another state: no claim of a sign-out, just the start page');
});

t.test('back-channel logout: a valid logout token ends the sessions it names, nothing else', async (t) => {
  const { signIn, signedIn, logoutToken, postLogout } = await oidcStub(t);
  const alice1 = await signIn('alice', 'sid-a1');
  const alice2 = await signIn('alice', 'sid-a2');
  const bob = await signIn('bob', 'sid-b');

  const bySid = await postLogout({ logout_token: await logoutToken({ sub: 'alice', sid: 'sid-a1' }) });
  t.equal(bySid.statusCode, 200, bySid.body);
  t.equal(bySid.headers['cache-control'], 'no-store');
  t.notOk(await signedIn(alice1.cookies), 'the session of that sid ended');
  t.ok(await signedIn(alice2.cookies), "alice's other session is untouched");
  t.ok(await signedIn(bob.cookies), "bob's too");

  const bySub = await postLogout({ logout_token: await logoutToken({ sub: 'alice' }) });
  t.equal(bySub.statusCode, 200);
  t.notOk(await signedIn(alice2.cookies), 'without a sid: every session of the sub ends (§2.7)');
  t.ok(await signedIn(bob.cookies), 'bob is still signed in');
});

t.test('back-channel logout: every invalid logout token is a 400 and ends nothing (§2.6, §2.8)', async (t) => {
  const { signIn, signedIn, logoutToken, postLogout, privateKey } = await oidcStub(t);
  const bob = await signIn('bob', 'sid-b');
  const other = await generateKeyPair('ES256');
  const replayed = await logoutToken({ sub: 'someone-else' });
  t.equal((await postLogout({ logout_token: replayed })).statusCode, 200, 'a first delivery is accepted');
  const signedBy = (key: Parameters<SignJWT['sign']>[0], claims: Record<string, unknown>) =>
    new SignJWT({ events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'logout+jwt' })
      .setIssuer(ISSUER)
      .setAudience('demo-client')
      .setIssuedAt()
      .sign(key);
  const none = `${Buffer.from('{"alg":"none","typ":"logout+jwt"}').toString('base64url')}.${Buffer.from(
    JSON.stringify({ iss: ISSUER, aud: 'demo-client', sub: 'bob', iat: 1, jti: 'x', events: {} }),
  ).toString('base64url')}.`;
  const cases: Array<[string, Record<string, string>]> = [
    ['no logout_token', {}],
    ['not a JWT', { logout_token: 'abc' }],
    ['alg none', { logout_token: none }],
    ['another key', { logout_token: await signedBy(other.privateKey, { sub: 'bob' }) }],
    ['another audience', { logout_token: await logoutToken({ sub: 'bob', aud: 'other-client' }) }],
    ['another issuer', { logout_token: await logoutToken({ sub: 'bob', iss: 'https://evil.example' }) }],
    ['an ID token (no logout+jwt typ)', { logout_token: await logoutToken({ sub: 'bob' }, { typ: 'JWT' }) }],
    ['no event', { logout_token: await logoutToken({ sub: 'bob', events: {} }) }],
    ['a nonce', { logout_token: await logoutToken({ sub: 'bob', nonce: 'n' }) }],
    ['neither sub nor sid', { logout_token: await logoutToken({}) }],
    ['a replay', { logout_token: replayed }],
  ];
  for (const [name, form] of cases) {
    const res = await postLogout(form);
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().error, 'invalid_request', name);
    t.ok(await signedIn(bob.cookies), `${name}: bob is still signed in`);
  }
  const valid = await signedBy(privateKey, { sub: 'bob' });
  t.equal(
    (await postLogout({ logout_token: valid })).statusCode,
    200,
    'the same claims under the right key are accepted',
  );
  t.notOk(await signedIn(bob.cookies), 'and end the session');
});
