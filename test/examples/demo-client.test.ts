import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import t from 'tap';
import { SESSION_COOKIE, STATE_COOKIE, buildDemoClient } from '../../examples/demo-client/app.js';
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
