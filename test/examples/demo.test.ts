import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { finished, waitForLine } from '../process.js';
import { SocketBrowser, freePort, hiddenField } from './support.js';

/** The built demo (npm test builds first). */
const DEMO = fileURLToPath(new URL('../../dist/scripts/demo.js', import.meta.url));

t.test('npm run demo: four servers on 127.0.0.1, a full sign-in through them, a clean stop', async (t) => {
  t.ok(existsSync(DEMO), 'the build produced dist/scripts/demo.js');
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-demo-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const ports = {
    gatehouse: await freePort(),
    host: await freePort(),
    api: await freePort(),
    client: await freePort(),
  };
  const child = spawn(process.execPath, [DEMO], {
    env: {
      PATH: process.env.PATH ?? '',
      DEMO_GATEHOUSE_PORT: String(ports.gatehouse),
      DEMO_HOST_PORT: String(ports.host),
      DEMO_API_PORT: String(ports.api),
      DEMO_CLIENT_PORT: String(ports.client),
      DEMO_DATA_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = finished(child, 120_000);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const [, openUrl] = await waitForLine(child, /Open (http:\/\/\S+) in your browser/);
  const issuer = `http://127.0.0.1:${ports.gatehouse}`;
  const clientUrl = `http://127.0.0.1:${ports.client}/`;
  t.equal(openUrl, clientUrl, 'prints the demo client URL');

  t.equal((await fetch(`${issuer}/healthz`)).status, 200, 'Gatehouse answers');
  t.equal((await fetch(`${issuer}/readyz`)).status, 200, 'and is ready');
  t.equal((await fetch(`http://127.0.0.1:${ports.host}/`)).status, 200, 'the host app answers');
  const api = await fetch(`http://127.0.0.1:${ports.api}/mcp`);
  t.equal(api.status, 401, 'the API wants a token');
  t.match(api.headers.get('www-authenticate'), /resource_metadata=/);
  const prm = (await (
    await fetch(`http://127.0.0.1:${ports.api}/.well-known/oauth-protected-resource/mcp`)
  ).json()) as { authorization_servers: string[] };
  t.same(prm.authorization_servers, [issuer], 'the API names Gatehouse');
  const secretFile = join(dataDir, 'key-encryption-secret');
  t.ok(existsSync(secretFile), 'the key encryption secret is kept in the data dir');
  t.match(await readFile(secretFile, 'utf8'), /^[A-Za-z0-9_-]{43}\n$/);

  // A person's path through it, over real sockets.
  const browser = new SocketBrowser();
  const home = await browser.request(clientUrl);
  t.equal(home.status, 200);
  const link = /<a class="button" href="([^"]+)">Sign in with Gatehouse<\/a>/.exec(home.body);
  t.ok(link, 'the page has the sign-in link');
  const authorize = new URL(link![1]!.replaceAll('&amp;', '&'));
  t.equal(`${authorize.origin}${authorize.pathname}`, `${issuer}/authorize`, 'it links to Gatehouse /authorize');
  t.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  t.equal(authorize.searchParams.get('resource'), `http://127.0.0.1:${ports.api}/mcp`);

  const toHost = await browser.request(authorize.href);
  t.equal(toHost.status, 303, toHost.body);
  t.match(toHost.location, new RegExp(`^http://127\\.0\\.0\\.1:${ports.host}/login\\?login_request=`));
  const form = await browser.request(toHost.location!);
  t.equal(form.status, 200);
  const answered = await browser.post(`http://127.0.0.1:${ports.host}/login`, {
    login_request: hiddenField(form.body, 'login_request'),
    csrf: hiddenField(form.body, 'csrf'),
    username: 'alice',
    password: 'alice-password',
    action: 'sign-in',
  });
  t.equal(answered.status, 303);
  const complete = await browser.request(answered.location!);
  t.equal(complete.status, 303, complete.body);
  t.match(complete.location, /\/consent\?request=/);
  const consent = await browser.request(complete.location!);
  t.equal(consent.status, 200);
  t.match(consent.body, /Gatehouse demo client/);
  const allowed = await browser.post(`${issuer}/consent`, {
    request: new URL(complete.location!).searchParams.get('request')!,
    csrf: hiddenField(consent.body, 'csrf'),
    decision: 'allow',
  });
  t.equal(allowed.status, 303, allowed.body);
  t.match(allowed.location, new RegExp(`^http://127\\.0\\.0\\.1:${ports.client}/callback\\?`));
  const callback = await browser.request(allowed.location!);
  t.equal(callback.status, 303, callback.body);
  const signedIn = await browser.request(clientUrl);
  t.match(signedIn.body, /user-1001/, 'signed in as alice');
  t.match(signedIn.body, /HTTP 200/, 'the API accepted the token');
  t.match(signedIn.body, /&quot;sub&quot;: &quot;user-1001&quot;/, "and the API's JSON is shown");

  const csrf = hiddenField(signedIn.body, 'csrf');
  t.equal((await browser.post(`http://127.0.0.1:${ports.client}/refresh`, { csrf })).status, 303);
  t.match((await browser.request(clientUrl)).body, /Tokens refreshed/);
  t.equal((await browser.post(`http://127.0.0.1:${ports.client}/revoke`, { csrf })).status, 303);
  t.match((await browser.request(clientUrl)).body, /Refresh token revoked/);
  await browser.post(`http://127.0.0.1:${ports.client}/refresh`, { csrf });
  t.match(
    (await browser.request(clientUrl)).body,
    /Refresh refused: invalid_grant/,
    'a revoked refresh token no longer works',
  );

  // OpenID Connect: the demo asks for openid, so it shows the ID token and can sign out everywhere.
  const clientBase = `http://127.0.0.1:${ports.client}`;
  const withIdToken = await browser.request(clientUrl);
  t.match(withIdToken.body, /The ID token(&#39;|')s claims/, "the ID token's claims are shown");
  t.match(withIdToken.body, /&quot;sid&quot;/, 'with the session id a logout token names');
  t.match(withIdToken.body, /Sign out everywhere/);
  const signOut = await browser.post(`${clientBase}/sign-out`, { csrf });
  t.equal(signOut.status, 303);
  const endSession = new URL(signOut.location!);
  t.equal(`${endSession.origin}${endSession.pathname}`, `${issuer}/sign-out`, "to Gatehouse's end_session_endpoint");
  t.ok(endSession.searchParams.get('id_token_hint'), 'with the ID token as id_token_hint');
  const ended = await browser.request(signOut.location!);
  t.equal(ended.status, 303, ended.body);
  t.match(
    ended.location,
    new RegExp(`^${clientBase}/signed-out\\?state=`),
    'Gatehouse sends the browser back to the registered post-logout URI with the state',
  );
  const signedOut = await browser.request(ended.location!);
  t.equal(signedOut.status, 200);
  t.match(signedOut.body, /Signed out everywhere/);
  const startAgain = await browser.request(clientUrl);
  t.match(startAgain.body, /Sign in with Gatehouse/, 'the demo client session is gone');

  // Back-channel logout: signed in again, the user signs out at the host app. The host tells Gatehouse,
  // Gatehouse POSTs a logout token to the demo client, and the demo client ends its session.
  let hop = await browser.request(
    /<a class="button" href="([^"]+)">Sign in with Gatehouse<\/a>/.exec(startAgain.body)![1]!.replaceAll('&amp;', '&'),
  );
  for (let i = 0; i < 10 && hop.location && !hop.location.startsWith(`${clientBase}/callback`); i++) {
    hop = await browser.request(hop.location);
    if (hop.status === 200 && /name="username"/.test(hop.body)) {
      hop = await browser.post(`http://127.0.0.1:${ports.host}/login`, {
        login_request: hiddenField(hop.body, 'login_request'),
        csrf: hiddenField(hop.body, 'csrf'),
        username: 'alice',
        password: 'alice-password',
        action: 'sign-in',
      });
    } else if (hop.status === 200 && /name="decision"/.test(hop.body)) {
      hop = await browser.post(`${issuer}/consent`, {
        request: hiddenField(hop.body, 'request'),
        csrf: hiddenField(hop.body, 'csrf'),
        decision: 'allow',
      });
    }
  }
  t.match(hop.location, new RegExp(`^${clientBase}/callback\\?`), 'signed in again');
  t.equal((await browser.request(hop.location!)).status, 303);
  t.match((await browser.request(clientUrl)).body, /user-1001/, 'signed in to the demo client again');
  const hostHome = await browser.request(`http://127.0.0.1:${ports.host}/`);
  t.match(hostHome.body, /Alice Liddell/, 'signed in at the host app');
  const hostOut = await browser.post(`http://127.0.0.1:${ports.host}/logout`, {
    csrf: hiddenField(hostHome.body, 'csrf'),
  });
  t.equal(hostOut.status, 303);
  let afterHostSignOut = await browser.request(clientUrl);
  for (let i = 0; i < 300 && !/Sign in with Gatehouse/.test(afterHostSignOut.body); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    afterHostSignOut = await browser.request(clientUrl);
  }
  t.match(
    afterHostSignOut.body,
    /Sign in with Gatehouse/,
    'the logout token reached the demo client, which ended its session',
  );

  child.kill('SIGTERM');
  const end = await exited;
  t.equal(end.code, 0, `a clean exit: ${end.stderr}`);
  t.equal(end.signal, null);
  t.match(end.stdout, /demo: stopped/);
  t.equal(end.stderr, '', 'nothing on stderr');
  await t.rejects(fetch(`${issuer}/healthz`), 'Gatehouse stopped');
  await t.rejects(fetch(clientUrl), 'the client stopped');
});

t.test('a port already taken: a clear message and exit 1', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-demo-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as { port: number }).port;
  const child = spawn(process.execPath, [DEMO], {
    // The API starts first, so its port being taken fails fast, before any database is created.
    env: {
      PATH: process.env.PATH ?? '',
      DEMO_GATEHOUSE_PORT: String(await freePort()),
      DEMO_HOST_PORT: String(await freePort()),
      DEMO_API_PORT: String(taken),
      DEMO_CLIENT_PORT: String(await freePort()),
      DEMO_DATA_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const end = await finished(child, 60_000);
  t.equal(end.code, 1, end.stdout);
  t.match(end.stderr, /EADDRINUSE/);
  t.match(end.stderr, /DEMO_PORT_BASE/);
});
