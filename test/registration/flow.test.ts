import { createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { basic } from '../fixtures/clients.js';
import { answerLoginRequest } from '../fixtures/host.js';
import { buildTestApp } from '../helper.js';
import {
  authorize,
  authorizeAndConsent,
  authorizeUrl,
  bearer,
  Browser,
  DCR_ENV,
  ISSUER,
  JSON_HEADERS,
  mcpClient,
  pathOf,
  pkce,
  register,
  registered,
  signIn,
  token,
} from '../fixtures/registration.js';

t.test('a registered MCP client authorizes and redeems a code on another loopback port (RFC 8252 §7.3)', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, mcpClient());
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();
  const redirect = 'http://127.0.0.1:51999/callback';
  const callback = await authorizeAndConsent(
    browser,
    authorizeUrl(reg.client_id, redirect, challenge, { scope: 'read write' }),
  );
  t.equal(`${callback.origin}${callback.pathname}`, redirect);
  t.equal(callback.searchParams.get('iss'), ISSUER);
  const res = await token(app, {
    grant_type: 'authorization_code',
    code: callback.searchParams.get('code')!,
    code_verifier: verifier,
    client_id: reg.client_id,
    redirect_uri: redirect,
  });
  t.equal(res.statusCode, 200, res.body);
  const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
  const { payload } = await jwtVerify(res.json().access_token, jwks, {
    issuer: ISSUER,
    audience: 'https://mcp.example.com/mcp',
  });
  t.equal(payload.client_id, reg.client_id);
  t.equal(payload.scope, 'read write');
  t.type(res.json().refresh_token, 'string', 'refresh_token was registered');

  // Whether consent is asked again is the flow's business (loopback redirects of public clients); here
  // only the redirect matters.
  const viaLocalhost = await authorize(
    new Browser(app),
    authorizeUrl(reg.client_id, 'http://localhost:40000/oauth/callback', pkce().challenge),
  );
  t.equal(viaLocalhost.host, 'localhost:40000', 'the localhost registration matches any port too');
});

t.test(
  'client_secret_post and client_secret_basic registrations get secrets that work at /token; client_credentials is refused',
  async (t) => {
    const app = await buildTestApp(t, DCR_ENV);
    // Anyone who can reach /register must not be able to mint machine tokens for the APIs.
    const machine = await register(app, {
      client_name: 'Machine',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'read',
    });
    t.equal(machine.statusCode, 400);
    t.equal(machine.json().error, 'invalid_client_metadata');
    t.match(
      machine.json().error_description,
      /^grant_types: client_credentials is not available to self-registered clients/,
    );

    // A secret is checked by the method registered, exactly: /revoke authenticates the client like /token.
    const revoke = (form: Record<string, string>, headers: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: '/revoke',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        payload: new URLSearchParams({ token: 'unknown', ...form }).toString(),
      });
    const post = await registered(app, {
      client_name: 'Poster',
      redirect_uris: ['https://app.example.com/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    t.equal(
      (await revoke({ client_id: post.client_id, client_secret: post.client_secret })).statusCode,
      200,
      'client_secret_post works',
    );
    t.equal(
      (await revoke({}, { authorization: basic(post.client_id, post.client_secret) })).json().error,
      'invalid_client',
      'exactly the method registered',
    );
    const basicClient = await registered(app, { client_name: 'Basic', redirect_uris: ['https://app.example.com/cb'] });
    t.equal(basicClient.token_endpoint_auth_method, 'client_secret_basic');
    t.equal(
      (await revoke({}, { authorization: basic(basicClient.client_id, basicClient.client_secret) })).statusCode,
      200,
      'client_secret_basic works',
    );

    // A public client cannot become a machine client through RFC 7592 either.
    const pub = await registered(app, mcpClient());
    const put = await app.inject({
      method: 'PUT',
      url: `/register/${pub.client_id}`,
      headers: { ...JSON_HEADERS, ...bearer(pub.registration_access_token) },
      payload: {
        client_id: pub.client_id,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    });
    t.equal(put.statusCode, 400);
    t.equal(put.json().error, 'invalid_client_metadata');

    // A confidential web client with an https redirect runs the code flow with its secret.
    const web = await registered(app, { client_name: 'Web', redirect_uris: ['https://app.example.com/cb'] });
    t.equal(web.application_type, 'web');
    const { verifier, challenge } = pkce();
    const callback = await authorizeAndConsent(
      new Browser(app),
      authorizeUrl(web.client_id, 'https://app.example.com/cb', challenge),
    );
    t.equal(callback.origin, 'https://app.example.com');
    const res = await token(
      app,
      {
        grant_type: 'authorization_code',
        code: callback.searchParams.get('code')!,
        code_verifier: verifier,
        redirect_uri: 'https://app.example.com/cb',
      },
      { authorization: basic(web.client_id, web.client_secret) },
    );
    t.equal(res.statusCode, 200, res.body);
    t.notOk('refresh_token' in res.json(), 'refresh_token was not registered');
  },
);

t.test('DCR_ALWAYS_RETURN_CLIENT_SECRET: the client still authenticates as a public client', async (t) => {
  const app = await buildTestApp(t, { ...DCR_ENV, DCR_ALWAYS_RETURN_CLIENT_SECRET: 'true' });
  const reg = await registered(app, mcpClient());
  const { verifier, challenge } = pkce();
  const redirect = 'http://127.0.0.1:33418/callback';
  const callback = await authorizeAndConsent(new Browser(app), authorizeUrl(reg.client_id, redirect, challenge));
  const code = callback.searchParams.get('code')!;
  const withSecret = await token(app, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    client_id: reg.client_id,
    client_secret: reg.client_secret,
    redirect_uri: redirect,
  });
  t.equal(withSecret.json().error, 'invalid_client', 'the returned secret authenticates nothing');
  const asPublic = await token(app, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    client_id: reg.client_id,
    redirect_uri: redirect,
  });
  t.equal(asPublic.statusCode, 200, asPublic.body);
});

t.test('a registered client never skips consent, whatever it sent or an operator set', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  // A confidential client with an https redirect, so nothing but skip_consent could spare the page.
  const redirect = 'https://app.example.com/cb';
  const reg = await registered(app, { client_name: 'Web', redirect_uris: [redirect], skip_consent: true });
  const first = await signIn(new Browser(app), authorizeUrl(reg.client_id, redirect, pkce().challenge));
  t.match(first.headers.location, /\/consent\?request=/, 'consent is asked');
  await app.clientAdmin.update(reg.client_id, { skip_consent: true });
  t.equal((await app.clientAdmin.find(reg.client_id))?.skip_consent, true);
  const second = await signIn(new Browser(app), authorizeUrl(reg.client_id, redirect, pkce().challenge));
  t.match(
    second.headers.location,
    /\/consent\?request=/,
    'still asked: the flow refuses skip_consent for registered clients',
  );
});

t.test('after PUT changes redirect_uris, the old one is refused at /authorize', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, {
    client_name: 'Web',
    redirect_uris: ['https://old.example.com/cb'],
    token_endpoint_auth_method: 'none',
  });
  const before = await new Browser(app).get(
    authorizeUrl(reg.client_id, 'https://old.example.com/cb', pkce().challenge),
  );
  t.equal(before.statusCode, 303, 'the old redirect works before the change');
  const put = await app.inject({
    method: 'PUT',
    url: `/register/${reg.client_id}`,
    headers: { ...JSON_HEADERS, ...bearer(reg.registration_access_token) },
    payload: JSON.stringify({
      client_id: reg.client_id,
      client_name: 'Web',
      redirect_uris: ['https://new.example.com/cb'],
      token_endpoint_auth_method: 'none',
    }),
  });
  t.equal(put.statusCode, 200, put.body);
  const old = await new Browser(app).get(authorizeUrl(reg.client_id, 'https://old.example.com/cb', pkce().challenge));
  t.equal(old.statusCode, 400, 'refused with an error page');
  t.notOk(old.headers.location, 'never redirected to the old URI');
  const now = await new Browser(app).get(authorizeUrl(reg.client_id, 'https://new.example.com/cb', pkce().challenge));
  t.equal(now.statusCode, 303);
  t.match(pathOf(now.headers.location), /^\/login\?login_request=/);
});

t.test('after DELETE, the client is invalid_client at /token and its refresh token is gone', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, mcpClient());
  const { verifier, challenge } = pkce();
  const redirect = 'http://127.0.0.1:33418/callback';
  const callback = await authorizeAndConsent(new Browser(app), authorizeUrl(reg.client_id, redirect, challenge));
  const issued = await token(app, {
    grant_type: 'authorization_code',
    code: callback.searchParams.get('code')!,
    code_verifier: verifier,
    client_id: reg.client_id,
    redirect_uri: redirect,
  });
  t.equal(issued.statusCode, 200, issued.body);
  const del = await app.inject({
    method: 'DELETE',
    url: `/register/${reg.client_id}`,
    headers: bearer(reg.registration_access_token),
  });
  t.equal(del.statusCode, 204);
  const refresh = await token(app, {
    grant_type: 'refresh_token',
    refresh_token: issued.json().refresh_token,
    client_id: reg.client_id,
  });
  t.equal(refresh.statusCode, 401);
  t.equal(refresh.json().error, 'invalid_client');
  const authorize = await new Browser(app).get(authorizeUrl(reg.client_id, redirect, pkce().challenge));
  t.equal(authorize.statusCode, 400, 'unknown client at /authorize: an error page');
});

t.test(
  'errors before sign-in: a self-registered client gets the error page, an operator’s client the redirect (RFC 9700 §4.11.2)',
  async (t) => {
    const app = await buildTestApp(t, DCR_ENV);
    const redirect = 'https://phish.example.net/callback';
    const reg = await registered(app, mcpClient({ redirect_uris: [redirect], token_endpoint_auth_method: 'none' }));
    const { client: operators } = await app.clientAdmin.create({
      name: 'Operator’s app',
      redirect_uris: [redirect],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      scopes: ['read'],
    });
    const cases: Array<[string, Record<string, string>, string]> = [
      ['an unknown scope', { scope: 'admin' }, 'invalid_scope'],
      ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
      ['prompt=none without a session', { prompt: 'none' }, 'login_required'],
    ];
    for (const [name, extra, error] of cases) {
      const self = await app.inject({
        method: 'GET',
        url: authorizeUrl(reg.client_id, redirect, pkce().challenge, { state: 's', ...extra }),
      });
      t.equal(self.statusCode, 400, `${name}: a page`);
      t.notOk(self.headers.location, `${name}: the self-registered client's redirect URI is not followed`);
      t.match(self.headers['content-type'], /text\/html/, `${name}: told on Gatehouse's page`);
      t.notOk(self.body.includes('phish.example.net'), `${name}: the page does not link there either`);

      const op = await app.inject({
        method: 'GET',
        url: authorizeUrl(operators.client_id, redirect, pkce().challenge, { state: 's', ...extra }),
      });
      t.equal(op.statusCode, 303, `${name}: the operator's client is redirected`);
      const location = new URL(String(op.headers.location));
      t.equal(`${location.origin}${location.pathname}`, redirect);
      t.equal(location.searchParams.get('error'), error, `${name}: ${error}`);
      t.equal(location.searchParams.get('state'), 's');
    }
  },
);

t.test(
  'NATIVE_REDIRECT_SCHEMES lets a client with a single-label app scheme (cursor://) register and authorize; consent is always asked',
  async (t) => {
    const cursor = 'cursor://anysphere.cursor-mcp/oauth/callback';
    const strict = await buildTestApp(t, DCR_ENV);
    const refused = await register(strict, mcpClient({ redirect_uris: [cursor] }));
    t.equal(refused.statusCode, 400, 'by default only reverse-domain private-use schemes (RFC 8252 §7.1)');
    t.equal(refused.json().error, 'invalid_redirect_uri');
    t.match(refused.json().error_description, /NATIVE_REDIRECT_SCHEMES/, 'the error says how an operator allows it');

    const app = await buildTestApp(t, { ...DCR_ENV, NATIVE_REDIRECT_SCHEMES: 'cursor' });
    const reg = await registered(app, mcpClient({ redirect_uris: [cursor] }));
    t.equal(reg.application_type, 'native', 'an app scheme makes the client native');
    const webOnly = await register(app, mcpClient({ application_type: 'web', redirect_uris: [cursor] }));
    t.match(webOnly.json().error_description, /allowed only for native clients/, 'still only for native clients');
    const other = await register(app, mcpClient({ redirect_uris: ['windsurf://codeium.windsurf/callback'] }));
    t.equal(other.statusCode, 400, 'only the schemes the operator named');

    const browser = new Browser(app);
    const { verifier, challenge } = pkce();
    const callback = await authorizeAndConsent(browser, authorizeUrl(reg.client_id, cursor, challenge));
    t.equal(`${callback.protocol}//${callback.host}${callback.pathname}`, cursor, 'the code goes to the app scheme');
    const res = await token(app, {
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code')!,
      code_verifier: verifier,
      client_id: reg.client_id,
      redirect_uri: cursor,
    });
    t.equal(res.statusCode, 200, res.body);
    // Any app on the device could claim the scheme (RFC 8252 §8.6): remembered consent is not trusted.
    const again = await browser.get(authorizeUrl(reg.client_id, cursor, pkce().challenge));
    t.equal(again.statusCode, 303);
    t.match(
      String(again.headers.location),
      /\/consent\?request=/,
      'signed in already, the second request still goes to the consent page',
    );
  },
);

t.test(
  'two authorizations in one browser do not unbind each other (one binding cookie per browser, reused)',
  async (t) => {
    const app = await buildTestApp(t, DCR_ENV);
    const reg = await registered(app, mcpClient());
    const browser = new Browser(app);
    const redirect = 'http://127.0.0.1:51999/callback';
    const first = await browser.get(authorizeUrl(reg.client_id, redirect, pkce().challenge));
    const binding = [...browser.cookies.entries()].find(([name]) => name.includes('gatehouse_bind'));
    t.ok(binding, 'the first request binds the browser');
    // A second tab (or a silent request) starts another flow before the first sign-in comes back.
    const second = await browser.get(authorizeUrl(reg.client_id, redirect, pkce().challenge));
    t.equal(second.statusCode, 303);
    t.equal(browser.cookies.get(binding![0]), binding![1], 'the browser keeps its binding');
    const answered = await browser.get(await answerLoginRequest(first.headers.location, { sub: 'alice' }));
    t.equal(answered.statusCode, 303, answered.body);
    t.match(String(answered.headers.location), /\/consent\?request=/, 'the first flow still completes its sign-in');
    const alsoAnswered = await browser.get(await answerLoginRequest(second.headers.location, { sub: 'alice' }));
    t.equal(alsoAnswered.statusCode, 303, 'and so does the second');
    // Another browser still cannot answer for this one.
    const other = new Browser(app);
    const third = await new Browser(app).get(authorizeUrl(reg.client_id, redirect, pkce().challenge));
    const stolen = await other.get(await answerLoginRequest(third.headers.location, { sub: 'mallory' }));
    t.equal(stolen.statusCode, 400, 'an answer replayed in another browser is refused');
  },
);

t.test('after sign-in, errors for a self-registered client are shown, not redirected (RFC 9700 §4.11.2)', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const phishing = 'https://phish.example.net/cb';
  const reg = await registered(app, {
    client_name: 'Free prizes',
    redirect_uris: [phishing],
    token_endpoint_auth_method: 'none',
  });
  const browser = new Browser(app);
  // The victim is signed in to Gatehouse through some other client.
  const trusted = await registered(app, mcpClient());
  await authorizeAndConsent(
    browser,
    authorizeUrl(trusted.client_id, 'http://127.0.0.1:51999/callback', pkce().challenge),
  );

  const silent = await browser.get(authorizeUrl(reg.client_id, phishing, pkce().challenge, { prompt: 'none' }));
  t.equal(silent.statusCode, 400, 'consent_required on a page');
  t.notOk(silent.headers.location, 'never redirected to the registered phishing URI');
  t.match(silent.body, /consent_required/);
  t.notOk(silent.body.includes('phish.example.net'), 'nor linked');

  // The host answering with an error (no interaction shown by Gatehouse) is shown too.
  const started = await new Browser(app).get(authorizeUrl(reg.client_id, phishing, pkce().challenge));
  const hostBrowser = new Browser(app);
  hostBrowser.jar.store(started.url, ([] as string[]).concat(started.headers['set-cookie'] ?? []));
  const refused = await hostBrowser.get(await answerLoginRequest(started.headers.location, { error: 'access_denied' }));
  t.equal(refused.statusCode, 403, refused.body);
  t.notOk(refused.headers.location, 'the host error is not sent to the unvetted client');
});

t.test('a client disabled while the user signs in gets no redirect for the host error either', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const { client } = await app.clientAdmin.create({
    name: 'Operator app',
    redirect_uris: ['https://two.example/cb'],
    token_endpoint_auth_method: 'none',
  });
  const browser = new Browser(app);
  const started = await browser.get(authorizeUrl(client.client_id, 'https://two.example/cb', pkce().challenge));
  await app.clientAdmin.setDisabled(client.client_id, true);
  const answered = await browser.get(await answerLoginRequest(started.headers.location, { error: 'login_required' }));
  t.equal(answered.statusCode, 400);
  t.notOk(answered.headers.location, 'no redirect for a disabled client');
});
