import * as oauth from 'oauth4webapi';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import {
  browserTestsCanRun,
  gatehouseWithHost,
  launchChromium,
  signInAsAlice,
  loopbackCallback,
} from '../fixtures/browser.js';
import { clientKey, jwksOf } from '../kit/client-keys.js';

/**
 * A pushed authorization request (RFC 9126) in a real headless Chromium: a FAPI 2.0 client (private_key_jwt,
 * PAR required) pushes its request with oauth4webapi, the browser is sent to /authorize with only client_id
 * and request_uri, the example host app signs the user in, the consent page shows what was pushed, the
 * browser lands on the client's callback, the client redeems the code. Reloading the used request_uri
 * shows Gatehouse's error page; the client's unpushed request is sent back with the precise error.
 */

if (browserTestsCanRun(t)) await run();

async function run(): Promise<void> {
  const { app, issuer, gatehousePort, hostPort } = await gatehouseWithHost(t, {
    SCOPES: '{"read":"Read your statements"}',
    RESOURCES: 'https://bank-api.example.com',
  });
  const callback = await loopbackCallback(t);
  const { redirectUri } = callback;

  const key = await clientKey('ES256', 'bank-app');
  const { client: registered } = await app.clientAdmin.create({
    name: 'Bank Statements',
    application_type: 'native',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: jwksOf(key),
    security_profile: 'fapi2',
    scopes: ['read'],
  });
  const HTTP = { [oauth.allowInsecureRequests]: true } as const;
  const as = await oauth.processDiscoveryResponse(
    new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', ...HTTP }),
  );
  const client: oauth.Client = { client_id: registered.client_id };
  const auth = oauth.PrivateKeyJwt({ key: key.privateKey, kid: key.kid });

  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  t.teardown(() => context.close());

  async function landed(page: Page): Promise<URLSearchParams> {
    await page.waitForURL((url) => url.port === String(callback.port) && url.pathname === '/callback', {
      timeout: 15_000,
    });
    return new URL(page.url()).searchParams;
  }

  await t.test('push, sign in, consent, code, token; the used request_uri is refused', async (t) => {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const pushed = await oauth.processPushedAuthorizationResponse(
      as,
      client,
      await oauth.pushedAuthorizationRequest(
        as,
        client,
        auth,
        {
          response_type: 'code',
          redirect_uri: redirectUri,
          scope: 'read',
          state,
          code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
        },
        HTTP,
      ),
    );
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set('client_id', client.client_id);
    url.searchParams.set('request_uri', pushed.request_uri);

    const page = await context.newPage();
    await page.goto(url.href);
    t.equal(new URL(page.url()).port, String(hostPort), 'the browser was handed to the host app to sign in');
    await signInAsAlice(page, hostPort);
    await page.waitForURL((u) => u.port === String(gatehousePort) && u.pathname === '/consent');
    t.match(
      await page.getByRole('heading', { level: 1 }).textContent(),
      /Bank Statements wants to access your account/,
    );
    t.match((await page.textContent('body')) ?? '', 'Read your statements', 'the pushed scope is shown');
    await page.getByRole('button', { name: 'Allow' }).click();
    const params = await landed(page);
    t.equal(params.get('state'), state, 'the pushed state comes back');
    t.equal(params.get('iss'), issuer);

    const callbackParams = oauth.validateAuthResponse(as, client, new URL(page.url()), state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, auth, callbackParams, redirectUri, verifier, {
        ...HTTP,
        DPoP: oauth.DPoP(client, await oauth.generateKeyPair('ES256')),
      }),
    );
    t.equal(tokens.scope, 'read', 'the code is redeemed with private_key_jwt');
    t.equal(tokens.token_type, 'dpop', 'with a DPoP proof, as the FAPI 2.0 profile requires');

    // The same link again (a reload, a back button): the request_uri was used once.
    const again = await page.goto(url.href);
    t.equal(again?.status(), 400);
    t.match((await page.textContent('body')) ?? '', /already used/);
    t.match((await page.textContent('body')) ?? '', /invalid_request_uri/);
  });

  await t.test('an unpushed request from this FAPI 2.0 client is sent back with the reason', async (t) => {
    const page = await context.newPage();
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'read',
      state: 'plain',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
    });
    await page.goto(`${issuer}/authorize?${q}`);
    const params = await landed(page);
    t.equal(params.get('error'), 'invalid_request');
    t.match(params.get('error_description'), /requires pushed authorization requests/);
    t.equal(params.get('state'), 'plain');
  });
}
