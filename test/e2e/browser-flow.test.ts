import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import t from 'tap';
import { startResourceServer } from '../../examples/resource-server/app.js';
import {
  CHROMIUM_PATH,
  chromiumAvailable,
  gatehouseWithHost,
  launchChromium,
  signInAsAlice,
} from '../fixtures/browser.js';
import { pkce } from '../kit/pkce.js';

/**
 * The whole flow in a real headless Chromium: a public client (PKCE) sends the browser to /authorize,
 * the example host app signs the user in with its form, Gatehouse's consent page asks, the browser lands
 * on the client's loopback callback with a code; the client (this test, as a native app would) redeems it,
 * calls the example resource server, refreshes and revokes. Then: Deny, remembered consent, prompt=none.
 */

/** Where the consent-page screenshots are kept (test-artifacts/ is git-ignored; CI keeps the work tree). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

if (!chromiumAvailable()) {
  // CI installs Debian's chromium (.ci/run); a laptop without it runs every other test.
  if (process.env.CI) t.fail(`chromium is required in CI but missing at ${CHROMIUM_PATH}`);
  else
    t.plan(
      0,
      `no chromium at ${CHROMIUM_PATH}: apt-get install chromium (or set CHROMIUM_PATH) to run the browser tests`,
    );
} else {
  await run();
}

interface Callback {
  url: URL;
}

/** The client's loopback redirect target (RFC 8252 §7.3): records each callback and shows a plain page. */
async function callbackServer(): Promise<{ server: Server; port: number; hits: Callback[] }> {
  const hits: Callback[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    hits.push({ url });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Client</title><p id="done">Back at the client.</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, hits };
}

async function run(): Promise<void> {
  // The resource server must know the issuer first: one per attempt (gatehouseWithHost retries a lost port).
  let rs!: Awaited<ReturnType<typeof startResourceServer>>;
  const { app, issuer, gatehousePort, hostPort } = await gatehouseWithHost(t, async (issuer) => {
    const server = await startResourceServer({ issuer, requiredScope: 'read' });
    t.teardown(() => server.close());
    rs = server;
    return {
      SCOPES: '{"read":"Read your notes","write":"Change your notes"}',
      RESOURCES: server.resource,
    };
  });

  const callback = await callbackServer();
  t.teardown(() => new Promise<void>((resolve) => callback.server.close(() => resolve())));
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`;

  const { client } = await app.clientAdmin.create({
    name: 'Notes for Desktop',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read', 'write'],
    client_uri: 'https://notes.example.com',
  });

  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  await mkdir(ARTIFACTS, { recursive: true });

  function authorizeUrl(challenge: string, extra: Record<string, string> = {}): string {
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      scope: 'read write',
      resource: rs.resource,
      state: randomBytes(8).toString('hex'),
      ...extra,
    });
    return `${issuer}/authorize?${q}`;
  }

  /** Follows the browser to the callback and returns its query (code or error, state, iss). */
  async function landed(page: Page): Promise<URLSearchParams> {
    try {
      await page.waitForURL((url) => url.port === String(callback.port) && url.pathname === '/callback', {
        timeout: 15_000,
      });
    } catch (err) {
      throw new Error(
        `the browser never reached the callback; it is at ${page.url()}: ${((await page.textContent('body')) ?? '').trim().slice(0, 300)}`,
        { cause: err },
      );
    }
    return new URL(page.url()).searchParams;
  }

  /** A token endpoint answer: RFC 6749 §5.1 on success, §5.2 on error (read as strings, as the test uses them). */
  interface TokenAnswer {
    access_token: string;
    refresh_token: string;
    scope?: string;
    error?: string;
  }

  async function token(form: Record<string, string>): Promise<{ status: number; body: TokenAnswer }> {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: (await res.json()) as TokenAnswer };
  }

  async function callApi(accessToken?: string): Promise<Response> {
    return fetch(rs.resource, accessToken ? { headers: { authorization: `Bearer ${accessToken}` } } : {});
  }

  /** Page errors and console errors (a CSP violation is one) collected for a context. */
  function watch(page: Page): string[] {
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    return problems;
  }

  let context: BrowserContext;

  await t.test('authorize, host sign-in, consent, code, token, API, refresh, revoke', async (t) => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watch(page);
    const { verifier, challenge } = pkce();
    const state = 'desktop-state-1';

    await page.goto(authorizeUrl(challenge, { state }));
    // The host app's own sign-in form (examples/host-app).
    t.equal(new URL(page.url()).port, String(hostPort), 'the browser was handed to the host app to sign in');
    await signInAsAlice(page, hostPort);

    // Gatehouse's consent page.
    await page.waitForURL((url) => url.port === String(gatehousePort) && url.pathname === '/consent');
    const heading = page.getByRole('heading', { level: 1 });
    t.match(await heading.textContent(), /Notes for Desktop wants to access your account/);
    const body = (await page.textContent('body')) ?? '';
    t.match(body, 'Read your notes', 'each requested scope shows its catalogue description');
    t.match(body, 'Change your notes');
    t.match(body, rs.resource, 'the resource is named');
    t.match(await page.textContent('.redirect-host'), '127.0.0.1', 'the redirect host is shown');
    t.match(body, /on your own computer/i, 'a loopback redirect carries a warning');
    t.match(body, /Alice/i, 'the signed-in user is shown');
    await page.screenshot({ path: `${ARTIFACTS}consent-desktop.png`, fullPage: true });
    // The same page at a phone's width: nothing wider than the viewport, buttons still reachable.
    await page.setViewportSize({ width: 375, height: 740 });
    // A string, evaluated in the page: the test's own TypeScript has no DOM types.
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    t.equal(overflow, 0, 'no horizontal scrolling at 375 px');
    await page.screenshot({ path: `${ARTIFACTS}consent-mobile.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.getByRole('button', { name: 'Allow' }).click();
    const params = await landed(page);
    t.equal(params.get('state'), state, 'state comes back');
    t.equal(params.get('iss'), issuer, 'iss comes back (RFC 9207)');
    const code = params.get('code');
    t.ok(code, 'a code comes back');
    t.same(problems, [], 'no script errors or CSP violations on any page');

    const exchanged = await token({
      grant_type: 'authorization_code',
      code: code!,
      redirect_uri: redirectUri,
      client_id: client.client_id,
      code_verifier: verifier,
    });
    t.equal(exchanged.status, 200, 'the code is redeemed');
    t.ok(exchanged.body.refresh_token, 'a refresh token is issued');

    const api = await callApi(exchanged.body.access_token);
    t.equal(api.status, 200, 'the resource server accepts the token');
    const who = (await api.json()) as Record<string, unknown>;
    t.equal(who.sub, 'user-1001', 'the token names the user the host signed in');
    t.equal(who.client_id, client.client_id);
    t.equal((await callApi()).status, 401, 'without a token the API refuses');

    const refreshed = await token({
      grant_type: 'refresh_token',
      refresh_token: exchanged.body.refresh_token,
      client_id: client.client_id,
    });
    t.equal(refreshed.status, 200, 'refresh works');
    t.not(refreshed.body.refresh_token, exchanged.body.refresh_token, 'the refresh token rotated');
    t.equal((await callApi(refreshed.body.access_token)).status, 200, 'the refreshed access token works');

    const revoked = await fetch(`${issuer}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: refreshed.body.refresh_token,
        token_type_hint: 'refresh_token',
        client_id: client.client_id,
      }),
    });
    t.equal(revoked.status, 200, 'revocation answers 200');
    const after = await token({
      grant_type: 'refresh_token',
      refresh_token: refreshed.body.refresh_token,
      client_id: client.client_id,
    });
    t.equal(after.status, 400);
    t.equal(
      after.body.error,
      'invalid_grant',
      'the revoked chain yields no new tokens, so no new token reaches the API',
    );
    const replay = await token({
      grant_type: 'authorization_code',
      code: code!,
      redirect_uri: redirectUri,
      client_id: client.client_id,
      code_verifier: verifier,
    });
    t.equal(replay.body.error, 'invalid_grant', 'the code cannot be redeemed twice');
  });

  await t.test('remembered consent skips the page the second time', async (t) => {
    // RFC 8252 §8.6: a public client on a loopback redirect cannot prove who it is (any local program can
    // listen there), so Gatehouse asks again every time; remembered consent is for clients whose redirect
    // identifies them, here a browser-based app on https.
    const spaRedirect = 'https://notes.example.test/callback';
    const { client: spa } = await app.clientAdmin.create({
      name: 'Notes for the Web',
      token_endpoint_auth_method: 'none',
      redirect_uris: [spaRedirect],
      grant_types: ['authorization_code', 'refresh_token'],
      scopes: ['read', 'write'],
    });
    const problems: string[][] = [];
    const consentPages: string[] = [];
    /** A page in alice's browser whose problems and consent pages are counted with the others. */
    const watchedPage = async (): Promise<Page> => {
      const page = await context.newPage();
      problems.push(watch(page));
      page.on('framenavigated', (frame) => {
        if (frame === page.mainFrame() && new URL(frame.url()).pathname === '/consent') consentPages.push(frame.url());
      });
      return page;
    };
    // notes.example.test does not resolve here (and Playwright cannot intercept a redirect), so the redirect
    // the browser is sent on is read off its request. Chromium then commits an error page for the unresolved
    // host at a moment of its choosing, which would interrupt a later navigation: the page is closed instead.
    const toApp = async (page: Page, action: () => Promise<unknown>): Promise<URL> => {
      const request = page.waitForRequest((r) => r.url().startsWith('https://notes.example.test/'));
      await action().catch(() => undefined);
      const url = new URL((await request).url());
      await page.close();
      return url;
    };

    const page1 = await watchedPage();
    await page1.goto(
      authorizeUrl(pkce().challenge, { client_id: spa.client_id, redirect_uri: spaRedirect, scope: 'read write' }),
    );
    await page1.waitForURL((url) => url.pathname === '/consent');
    const first = await toApp(page1, () => page1.getByRole('button', { name: 'Allow' }).click());
    t.ok(first.searchParams.get('code'), 'Allow sends a code to the app');
    t.equal(consentPages.length, 1, 'the first request asks');

    const { verifier, challenge } = pkce();
    const page2 = await watchedPage();
    const second = await toApp(page2, () =>
      page2.goto(authorizeUrl(challenge, { client_id: spa.client_id, redirect_uri: spaRedirect, scope: 'read' })),
    );
    t.equal(consentPages.length, 1, 'the second request, covered by the first, shows no consent page');
    const params = second.searchParams;
    const exchanged = await token({
      grant_type: 'authorization_code',
      code: params.get('code')!,
      redirect_uri: spaRedirect,
      client_id: spa.client_id,
      code_verifier: verifier,
    });
    t.equal(exchanged.status, 200);
    t.equal(exchanged.body.scope, 'read', 'the token carries what was asked this time');

    const page = await watchedPage();
    await page.goto(
      authorizeUrl(pkce().challenge, {
        client_id: spa.client_id,
        redirect_uri: spaRedirect,
        scope: 'read',
        prompt: 'consent',
      }),
    );
    await page.waitForURL((url) => url.pathname === '/consent');
    t.equal(consentPages.length, 2, 'prompt=consent asks again');

    // The native client on its loopback redirect is asked again even though alice allowed it before.
    await page.goto(authorizeUrl(pkce().challenge, { scope: 'read' }));
    await page.waitForURL((url) => url.pathname === '/consent');
    t.equal(consentPages.length, 3, 'a loopback public client never skips the page (RFC 8252 §8.6)');
    t.same(problems.flat(), [], 'no page errors or CSP violations');
  });

  await t.test('Deny on the consent page returns access_denied', async (t) => {
    const page = await context.newPage();
    const { challenge } = pkce();
    await page.goto(authorizeUrl(challenge, { prompt: 'consent', state: 'deny-state' }));
    await page.waitForURL((url) => url.pathname === '/consent');
    await page.getByRole('button', { name: 'Deny' }).click();
    const params = await landed(page);
    t.equal(params.get('error'), 'access_denied');
    t.equal(params.get('state'), 'deny-state');
    t.equal(params.get('iss'), issuer);
    t.notOk(params.get('code'), 'no code after Deny');
  });

  await t.test(
    'an OpenID Connect sign-in: the consent page names the personal data, then ID token and userinfo',
    async (t) => {
      const oidc = await browser.newContext();
      t.teardown(() => oidc.close());
      const page = await oidc.newPage();
      const problems = watch(page);
      const { verifier, challenge } = pkce();
      const nonce = randomBytes(16).toString('base64url');
      // Identity only: no resource, the access token is for /userinfo (docs/openid-connect.md).
      const url = new URL(authorizeUrl(challenge, { scope: 'openid profile email', nonce }));
      url.searchParams.delete('resource');
      await page.goto(url.href);
      await signInAsAlice(page, hostPort);
      await page.waitForURL((u) => u.port === String(gatehousePort) && u.pathname === '/consent');
      const seen = page.getByRole('region', { name: 'It will see' });
      t.match(await seen.textContent(), /your email address/, 'the email scope in words');
      t.match(await seen.textContent(), /your name and basic profile/, 'the profile scope in words');
      t.match(await seen.textContent(), /who you are/, 'openid in words');
      t.equal(await page.getByRole('heading', { name: 'It will be able to' }).count(), 0, 'no API permissions asked');
      await page.screenshot({ path: `${ARTIFACTS}consent-openid.png`, fullPage: true });
      await page.getByRole('button', { name: 'Allow' }).click();
      const params = await landed(page);
      t.same(problems, [], 'no script errors or CSP violations');

      const exchanged = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: params.get('code')!,
          redirect_uri: redirectUri,
          client_id: client.client_id,
          code_verifier: verifier,
        }),
      });
      const tokens = (await exchanged.json()) as { id_token: string; access_token: string };
      const { payload } = await jwtVerify(
        tokens.id_token,
        createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)),
        {
          issuer,
          audience: client.client_id,
        },
      );
      t.equal(payload.sub, 'user-1001', 'the ID token names the user the host signed in');
      t.equal(payload.nonce, nonce, 'and echoes the nonce');
      const info = await fetch(`${issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      const claims = (await info.json()) as Record<string, unknown>;
      t.equal(claims.sub, 'user-1001');
      t.type(claims.email, 'string', 'the email the host sent');
      t.type(claims.name, 'string', 'the name the host sent');
    },
  );

  await t.test('prompt=none without a session returns login_required, with no page shown', async (t) => {
    const fresh = await browser.newContext();
    t.teardown(() => fresh.close());
    const page = await fresh.newPage();
    const { challenge } = pkce();
    await page.goto(authorizeUrl(challenge, { prompt: 'none', state: 'silent' }));
    const params = await landed(page);
    t.equal(params.get('error'), 'login_required');
    t.equal(params.get('state'), 'silent');
    t.equal(params.get('iss'), issuer);
  });

  t.teardown(() => context?.close());
}
