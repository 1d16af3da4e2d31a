import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import {
  browserTestsCanRun,
  codeFlowRequest,
  gatehouseWithHost,
  launchChromium,
  loopbackCallback,
  pageProblems,
  signInAsAlice,
  tripPlanner,
} from '../fixtures/browser.js';

/**
 * The connected-apps page in a real headless Chromium (issue 13, docs/connected-apps.md): alice signs in at
 * the example host app and allows an app on Gatehouse's consent page; the app redeems its code. In a fresh
 * browser she opens Gatehouse's /account/apps, is sent through the host's sign-in and back, sees the app
 * with what it may do, follows the host app's own link to the page, revokes the app, the app disappears
 * and its refresh token fails.
 */

/** Where the screenshots are kept (test-artifacts/ is git-ignored; CI keeps the work tree). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/connected-apps/', import.meta.url));

if (browserTestsCanRun(t)) await run();

async function run(): Promise<void> {
  const resource = 'https://api.example.com/';
  const { app, issuer, gatehousePort, hostPort } = await gatehouseWithHost(t, {
    SCOPES: '{"read":"Read your trips","write":"Plan and change your trips"}',
    RESOURCES: resource,
  });
  const callback = await loopbackCallback(t);
  const { redirectUri } = callback;

  const client = await tripPlanner(app, redirectUri, { client_uri: 'https://trips.example.com' });

  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  await mkdir(ARTIFACTS, { recursive: true });

  async function token(form: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  const shots: string[] = [];
  async function screenshot(page: Page, name: string): Promise<void> {
    const path = `${ARTIFACTS}${name}.png`;
    await page.screenshot({ path, fullPage: true });
    shots.push(path);
  }

  await t.test('allow an app, see it on the connected-apps page, revoke it', async (t) => {
    // 1. Alice allows Trip Planner (consent page), and the app redeems its code.
    const first = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    t.teardown(() => first.close());
    const consentTab = await first.newPage();
    const problems = pageProblems(consentTab);
    const { url, verifier } = codeFlowRequest(issuer, {
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'openid email read write',
      resource,
      state: 'trip',
    });
    await consentTab.goto(url);
    await signInAsAlice(consentTab, hostPort);
    await consentTab.waitForURL((url) => url.port === String(gatehousePort) && url.pathname === '/consent');
    t.match(await consentTab.textContent('body'), /You can change your mind later by revoking its access/);
    await consentTab.getByRole('button', { name: 'Allow' }).click();
    await consentTab.waitForURL((url) => url.port === String(callback.port));
    const code = new URL(consentTab.url()).searchParams.get('code');
    t.ok(code, 'the app gets a code');
    const tokens = await token({
      grant_type: 'authorization_code',
      code: code!,
      redirect_uri: redirectUri,
      client_id: client.client_id,
      code_verifier: verifier,
    });
    t.equal(tokens.status, 200, 'and redeems it');
    t.ok(tokens.body.refresh_token, 'with a refresh token');

    // 2. A fresh browser opens the page: Gatehouse sends it through the host's sign-in and back.
    const second = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    t.teardown(() => second.close());
    const page = await second.newPage();
    problems.push(...pageProblems(page));
    await page.goto(`${issuer}/account/apps`);
    t.equal(new URL(page.url()).port, String(hostPort), 'no Gatehouse session: the host signs the user in');
    await signInAsAlice(page, hostPort);
    await page.waitForURL((url) => url.port === String(gatehousePort) && url.pathname === '/account/apps');
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Connected apps', 'back on the page');
    const card = page.locator('li.app', { hasText: 'Trip Planner' });
    t.equal(await card.count(), 1, 'the app is listed');
    const text = (await card.textContent()) ?? '';
    t.match(text, 'Read your trips', 'what it can do, in the consent page words');
    t.match(text, 'Plan and change your trips');
    t.match(text, 'your email address', 'the personal data it sees');
    t.match(text, 'alice@example.com');
    t.match(text, 'https://api.example.com', 'the service');
    t.match(text, /Allowed since\s*\d/, 'since when');
    t.match(text, /Last used\s*\d/, 'last used');
    await screenshot(page, 'connected-apps-desktop');
    await page.setViewportSize({ width: 375, height: 740 });
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    t.equal(overflow, 0, 'no horizontal scrolling at 375 px');
    await screenshot(page, 'connected-apps-mobile');
    await page.setViewportSize({ width: 1280, height: 900 });

    // 3. The host app links to the page (docs/connected-apps.md).
    await page.goto(`http://127.0.0.1:${hostPort}/`);
    await page.getByRole('link', { name: 'Connected apps' }).click();
    await page.waitForURL((url) => url.port === String(gatehousePort) && url.pathname === '/account/apps');
    t.pass("the host app's link leads to the page, already signed in");

    // 4. Revoke: the app disappears, and its refresh token no longer works.
    await page.getByRole('button', { name: 'Revoke access for Trip Planner' }).click();
    await page.waitForURL((url) => url.pathname === '/account/apps' && url.searchParams.has('revoked'));
    t.equal(await page.locator('li.app', { hasText: 'Trip Planner' }).count(), 0, 'the app is gone');
    t.match(await page.getByRole('status').textContent(), 'Trip Planner no longer has access to your account.');
    t.match(await page.textContent('body'), 'No apps have access to your account.');
    await screenshot(page, 'connected-apps-revoked');
    const refreshed = await token({
      grant_type: 'refresh_token',
      refresh_token: tokens.body.refresh_token!,
      client_id: client.client_id,
    });
    t.equal(refreshed.status, 400);
    t.equal(refreshed.body.error, 'invalid_grant', "the revoked app's refresh token fails");
    t.same(problems, [], 'no script errors or CSP violations on any page');
    for (const path of shots) t.comment(`screenshot: ${path}`);
  });
}
