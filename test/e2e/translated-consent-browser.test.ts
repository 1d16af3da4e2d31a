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
 * The consent page in the user's language and the operator's brand, in a real headless Chromium
 * (issue 13, docs/branding-and-languages.md). An English-speaking browser whose client asks for
 * `ui_locales=de` gets the German page (OIDC Core §3.1.2.1: the client's choice first) and allows; a
 * Japanese browser (`Accept-Language: ja-JP`) with no `ui_locales` gets the Japanese page and denies.
 * Both carry the brand name (escaped), the logo, the brand colour on the primary button, the support
 * contact and the resource's display name; neither has a script error or a CSP violation, and neither
 * scrolls sideways on a phone.
 */

/** Where the screenshots are kept (test-artifacts/ is git-ignored; CI keeps the work tree). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/translated-consent/', import.meta.url));

/** A 64 × 64 logo as a data: URI, as BRAND_LOGO_URL allows (docs/branding-and-languages.md). */
const LOGO = `data:image/svg+xml;base64,${Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">' +
    '<rect width="64" height="64" rx="14" fill="#7a1f5c"/><path d="M18 44V20h12a8 8 0 0 1 0 16H18" ' +
    'fill="none" stroke="#fff" stroke-width="6"/></svg>',
).toString('base64')}`;
const BRAND_COLOR = '#7a1f5c';
const BRAND_RGB = 'rgb(122, 31, 92)';

if (browserTestsCanRun(t)) await run();

async function run(): Promise<void> {
  const resource = 'https://api.example.com';
  const { app, issuer, gatehousePort, hostPort } = await gatehouseWithHost(t, {
    SCOPES: '{"read":"Read your trips","write":"Plan and change your trips"}',
    RESOURCES: resource,
    RESOURCE_NAMES: JSON.stringify({ [resource]: 'Acme Trips API' }),
    BRAND_NAME: 'Acme <Travel>',
    BRAND_LOGO_URL: LOGO,
    BRAND_PRIMARY_COLOR: BRAND_COLOR,
    BRAND_SUPPORT_EMAIL: 'help@acme.example',
    BRAND_SUPPORT_URL: 'https://help.acme.example/',
  });
  const callback = await loopbackCallback(t);
  const { redirectUri } = callback;

  const client = await tripPlanner(app, redirectUri);

  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  await mkdir(ARTIFACTS, { recursive: true });

  /** Sends a fresh browser of this locale to /authorize and signs alice in at the host app. */
  async function toConsent(t: Tap.Test, locale: string, extra: Record<string, string>) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale });
    t.teardown(() => context.close());
    const page = await context.newPage();
    const problems = pageProblems(page);
    const { url, verifier } = codeFlowRequest(issuer, {
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'openid email read write',
      resource,
      state: 'trip',
      ...extra,
    });
    await page.goto(url);
    await signInAsAlice(page, hostPort);
    await page.waitForURL((url) => url.port === String(gatehousePort) && url.pathname === '/consent');
    return { page, problems, verifier };
  }

  /** What every branded page shows, whatever its language. */
  async function checkBrand(t: Tap.Test, page: Page, primaryButton: string, support: string): Promise<void> {
    const brand = page.locator('header.brand');
    t.equal(await brand.locator('.brand-name').textContent(), 'Acme <Travel>', 'the brand name, as text');
    const logoWidth = await brand
      .locator('img.brand-logo')
      .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth);
    t.ok(logoWidth > 0, 'the logo is loaded (the CSP allows a data: logo)');
    const background = await page.getByRole('button', { name: primaryButton, exact: true }).evaluate(
      (el) =>
        // Runs in the page (the test's types have no DOM).
        (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el)
          .backgroundColor,
    );
    t.equal(background, BRAND_RGB, 'the primary button in the brand colour');
    t.equal(await page.locator('a[href="mailto:help@acme.example"]').count(), 1, 'the support address');
    t.equal(await page.locator('a[href="https://help.acme.example/"]').count(), 1, 'the support page');
    t.equal(
      (await page.locator('footer .support').innerText()).replace(/\s+/g, ' ').trim(),
      support,
      'the footer reads as a sentence, its parts apart',
    );
    const resourceItem = page.locator('ul.resources li');
    t.equal(await resourceItem.locator('.resource-name').textContent(), 'Acme Trips API', 'the resource by its name');
    t.equal(await resourceItem.locator('code').textContent(), resource, 'its URI beneath');
  }

  async function screenshots(t: Tap.Test, page: Page, name: string): Promise<void> {
    await page.screenshot({ path: `${ARTIFACTS}${name}-desktop.png`, fullPage: true });
    await page.setViewportSize({ width: 375, height: 740 });
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    t.equal(overflow, 0, 'no horizontal scrolling at 375 px');
    await page.screenshot({ path: `${ARTIFACTS}${name}-mobile.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  await t.test("German by the client's ui_locales, in an English browser; Erlauben gives a code", async (t) => {
    const { page, problems, verifier } = await toConsent(t, 'en-US', { ui_locales: 'de-CH en' });
    t.equal(await page.getAttribute('html', 'lang'), 'de', 'the page is German (de-CH → de)');
    t.equal(await page.title(), 'Trip Planner erlauben? · Acme <Travel>', 'the title in German, with the brand');
    t.equal(
      await page.getByRole('heading', { level: 1 }).textContent(),
      'Trip Planner möchte auf Ihr Konto zugreifen',
      'the question in German',
    );
    const body = (await page.textContent('body')) ?? '';
    t.match(body, 'Ihre E-Mail-Adresse', 'the personal data in German');
    t.match(body, 'Read your trips', "the operator's scope descriptions as configured");
    t.match(body, 'Bei diesem Dienst', 'the resource heading in German');
    t.match(body, 'Support kontaktieren', 'the support link in German');
    t.notMatch(body, 'wants to access your account', 'no English left on the page');
    await checkBrand(t, page, 'Erlauben', 'Brauchen Sie Hilfe? Support kontaktieren · help@acme.example');
    await screenshots(t, page, 'consent-de');

    await page.getByRole('button', { name: 'Erlauben', exact: true }).click();
    await page.waitForURL((url) => url.port === String(callback.port));
    const code = new URL(page.url()).searchParams.get('code');
    t.ok(code, 'allowing in German gives the client a code');
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: code!,
        redirect_uri: redirectUri,
        client_id: client.client_id,
        code_verifier: verifier,
      }),
    });
    t.equal(res.status, 200, 'which it redeems');
    t.same(problems, [], 'no script error or CSP violation');
  });

  await t.test('Japanese by Accept-Language, without ui_locales; 拒否 denies', async (t) => {
    const { page, problems } = await toConsent(t, 'ja-JP', {});
    t.equal(await page.getAttribute('html', 'lang'), 'ja', 'the page is Japanese');
    t.equal(
      await page.getByRole('heading', { level: 1 }).textContent(),
      'Trip Planner があなたのアカウントへのアクセスを求めています',
      'the question in Japanese',
    );
    const body = (await page.textContent('body')) ?? '';
    t.match(body, 'あなたのメールアドレス', 'the personal data in Japanese');
    t.match(body, '対象のサービス', 'the resource heading in Japanese');
    t.match(body, 'サポートに問い合わせる', 'the support link in Japanese');
    await checkBrand(t, page, '許可', 'お困りですか？ サポートに問い合わせる · help@acme.example');
    await screenshots(t, page, 'consent-ja');

    await page.getByRole('button', { name: '拒否', exact: true }).click();
    await page.waitForURL((url) => url.port === String(callback.port));
    const back = new URL(page.url()).searchParams;
    t.equal(back.get('error'), 'access_denied', 'denying in Japanese tells the client access_denied');
    t.equal(back.get('state'), 'trip');
    t.same(problems, [], 'no script error or CSP violation');
  });
}
