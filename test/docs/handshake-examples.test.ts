import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import type { Clock } from '../../src/lib/clock.js';
import { freePort } from '../fixtures/listen.js';
import { testConfig, testDatabase } from '../helper.js';
import { Browser, type Page } from '../kit/browser.js';
import { pkce } from '../kit/pkce.js';
import { finished, waitForLine } from '../process.js';
import { exampleBlock } from './markdown.js';

/**
 * docs/handshake.md's worked examples, run exactly as the page prints them: each fenced block after an
 * `<!-- example: … -->` marker is written to a file and started as a real host app beside a real, listening
 * Gatehouse, and a browser goes through whole flows. A change to the page's code that breaks a flow fails here.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const HOST_ID = 'host-app';
const RESOURCE = 'https://api.example.com';
const PASSWORD = 'correct horse battery staple';

/** A python3 that has PyJWT 2.6 or later (Debian's python3-jwt, or pip's pyjwt), or null. */
function pythonWithJwt(): string | null {
  for (const candidate of [process.env.PYTHON, 'python3', '/usr/bin/python3']) {
    if (!candidate) continue;
    const check = spawnSync(
      candidate,
      ['-c', 'import jwt, sys; sys.exit(0 if tuple(map(int, jwt.__version__.split(".")[:2])) >= (2, 6) else 1)'],
      { stdio: 'ignore' },
    );
    if (check.status === 0) return candidate;
  }
  return null;
}

interface Runtime {
  name: string;
  command: string;
  file: string;
}

const markdown = await readFile(join(root, 'docs/handshake.md'), 'utf8');

t.test('the page marks both examples for this test', async (t) => {
  t.match(exampleBlock(markdown, 'node'), /from 'jose'/);
  t.match(exampleBlock(markdown, 'python'), /^import jwt$/m);
});

async function runtimes(t: Tap.Test): Promise<Runtime[]> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-handshake-doc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The Node example imports jose as its reader's app would: from a node_modules beside it.
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  await writeFile(join(dir, 'host.mjs'), exampleBlock(markdown, 'node'));
  await writeFile(join(dir, 'host.py'), exampleBlock(markdown, 'python'));
  const list: Runtime[] = [{ name: 'Node', command: process.execPath, file: join(dir, 'host.mjs') }];
  const python = pythonWithJwt();
  if (python) list.push({ name: 'Python', command: python, file: join(dir, 'host.py') });
  else if (process.env.CI) t.fail('CI needs python3 with PyJWT (Debian python3-jwt) to run the Python example');
  else t.comment('no python3 with PyJWT 2.6+ here (set PYTHON, or install python3-jwt): the Python example is not run');
  return list;
}

t.test('each worked example is a host app that completes real flows with Gatehouse', async (t) => {
  for (const runtime of await runtimes(t)) {
    await t.test(runtime.name, async (t) => {
      // Gatehouse's clock, so the test can make the next login_request newer than the host's last sign-in
      // (within CLOCK_SKEW_SECONDS) instead of sleeping.
      let offsetMs = 0;
      const clock: Clock = () => new Date(Date.now() + offsetMs);
      const [gatehousePort, hostPort] = [await freePort(), await freePort()];
      const issuer = `http://127.0.0.1:${gatehousePort}`;
      const hostOrigin = `http://127.0.0.1:${hostPort}`;
      // As the page says to make one: base64 text, used as written (its characters, not the bytes it encodes).
      const secret = randomBytes(32).toString('base64');
      const app = await buildApp(
        testConfig({
          ISSUER: issuer,
          SIGN_IN_URL: `${hostOrigin}/login`,
          HOST_ID,
          HANDSHAKE_SECRET: secret,
          SCOPES: '{"read":"Read your data"}',
          RESOURCES: RESOURCE,
        }),
        { database: await testDatabase(), clock },
      );
      t.teardown(() => app.close());
      await app.listen({ host: '127.0.0.1', port: gatehousePort });

      const host = spawn(runtime.command, [runtime.file], {
        env: {
          PATH: process.env.PATH ?? '',
          GATEHOUSE_ISSUER: issuer,
          HOST_ID,
          HANDSHAKE_SECRET: secret,
          EXAMPLE_PASSWORD: PASSWORD,
          PORT: String(hostPort),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = finished(host, 120_000);
      t.teardown(() => {
        if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
      });
      await waitForLine(host, new RegExp(`host app listening on ${hostOrigin.replaceAll('.', '\\.')}`));

      const redirect = `http://127.0.0.1:${await freePort()}/callback`;
      const { client } = await app.clientAdmin.create({
        name: 'Example app',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [redirect],
        grant_types: ['authorization_code'],
        scopes: ['read'],
        skip_consent: true,
      });
      const authorize = (b: Browser, extra: Record<string, string> = {}) => {
        const { verifier, challenge } = pkce();
        const query = new URLSearchParams({
          response_type: 'code',
          client_id: client.client_id,
          redirect_uri: redirect,
          code_challenge: challenge,
          code_challenge_method: 'S256',
          scope: 'read',
          state: 'st',
          resource: RESOURCE,
          ...extra,
        });
        return { verifier, page: b.get(`${issuer}/authorize?${query}`) };
      };
      const atHost = (page: Page) => {
        t.equal(page.status, 303, page.body);
        t.match(page.location, `${hostOrigin}/login?login_request=`, 'Gatehouse sends the browser to the host');
        return page.location!;
      };
      /** Follows the host's answer to Gatehouse and on to the client; returns the client's callback URL. */
      const backToClient = async (b: Browser, answered: Page): Promise<URL> => {
        t.equal(answered.status, 303, answered.body);
        t.match(answered.location, `${issuer}/sign-in/complete?login_response=`, 'the host answers Gatehouse');
        const complete = await b.get(answered.location!);
        t.equal(complete.status, 303, complete.body);
        t.match(complete.location, `${redirect}?`, 'Gatehouse sends the browser on to the client');
        const callback = new URL(complete.location!);
        t.equal(callback.searchParams.get('state'), 'st');
        t.equal(callback.searchParams.get('iss'), issuer);
        return callback;
      };
      const redeem = async (callback: URL, verifier: string) => {
        const code = callback.searchParams.get('code');
        t.ok(
          code,
          `a code, not ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`,
        );
        const res = await fetch(`${issuer}/token`, {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code: code ?? '',
            redirect_uri: redirect,
            client_id: client.client_id,
            code_verifier: verifier,
          }),
        });
        const body = (await res.json()) as { access_token: string };
        t.equal(res.status, 200, JSON.stringify(body));
        return decodeJwt(body.access_token);
      };
      const form = async (b: Browser, url: string) => {
        const page = await b.get(url);
        t.equal(page.status, 200, 'the host shows its sign-in form');
        t.match(page.body, 'Sign in to continue to Example app');
        return page;
      };
      const field = (html: string, name: string) => {
        const value = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
        if (value === undefined) throw new Error(`no ${name} field`);
        return value;
      };
      const submit = (b: Browser, page: Page, values: Record<string, string>) =>
        b.post(`${hostOrigin}/login`, {
          login_request: field(page.body, 'login_request'),
          csrf: field(page.body, 'csrf'),
          ...values,
        });
      const signIn = { username: 'alice', password: PASSWORD, action: 'sign-in' };

      const browser = new Browser();

      await t.test('first sign-in: the form, a wrong password, a forged form, then an access token', async (t) => {
        const { verifier, page } = authorize(browser);
        const signInPage = await form(browser, atHost(await page));
        const wrong = await submit(browser, signInPage, { ...signIn, password: 'wrong' });
        t.equal(wrong.status, 401, 'a wrong password is refused');
        t.match(wrong.body, 'Wrong username or password');
        const forged = await browser.post(`${hostOrigin}/login`, {
          login_request: field(signInPage.body, 'login_request'),
          csrf: 'x'.repeat(43),
          ...signIn,
        });
        t.equal(forged.status, 403, 'a form without the session CSRF token is refused');
        const token = await redeem(await backToClient(browser, await submit(browser, signInPage, signIn)), verifier);
        t.equal(token.sub, 'user-1', 'the token is for the user the host signed in');
        t.equal(token.aud, RESOURCE);
      });

      await t.test('signed in at Gatehouse: the next flow needs no trip to the host', async (t) => {
        const { verifier, page } = authorize(browser);
        const direct = await page;
        t.equal(direct.status, 303);
        t.match(direct.location, `${redirect}?`);
        t.equal((await redeem(new URL(direct.location!), verifier)).sub, 'user-1');
      });

      await t.test('signed in at the host only: the host answers from its session, no form', async (t) => {
        // A browser with the host's session cookie but no Gatehouse session.
        const other = new Browser();
        other.jar.store(hostOrigin, [`example_session=${browser.cookies.get('example_session')}; Path=/`]);
        const { verifier, page } = authorize(other);
        const answered = await other.get(atHost(await page));
        t.equal((await redeem(await backToClient(other, answered), verifier)).sub, 'user-1');
      });

      await t.test('prompt=login: the form again, one sign-in, then the code (no loop)', async (t) => {
        offsetMs = 10_000; // the login_request is now newer than the host's last sign-in
        const { verifier, page } = authorize(browser, { prompt: 'login' });
        const loginUrl = atHost(await page);
        t.equal(decodeJwt(new URL(loginUrl).searchParams.get('login_request')!).prompt, 'login');
        const signInPage = await form(browser, loginUrl);
        const answered = await submit(browser, signInPage, signIn);
        // The browser back at /login with the same prompt=login request is answered, not asked again.
        const again = await browser.get(loginUrl);
        t.equal(again.status, 303, 'the same login_request after the sign-in is answered from the session');
        t.match(again.location, `${issuer}/sign-in/complete?login_response=`);
        t.equal((await redeem(await backToClient(browser, answered), verifier)).sub, 'user-1');
      });

      await t.test('prompt=login with a space-separated prompt still asks', async () => {
        offsetMs = 20_000;
        const { page } = authorize(browser, { prompt: 'login consent' });
        await form(browser, atHost(await page));
      });

      await t.test('prompt=none: a code from the Gatehouse session, login_required without one', async (t) => {
        const { verifier, page } = authorize(browser, { prompt: 'none' });
        const direct = await page;
        t.equal(direct.status, 303);
        t.equal((await redeem(new URL(direct.location!), verifier)).sub, 'user-1');
        const stranger = new Browser();
        const refused = await authorize(stranger, { prompt: 'none' }).page;
        t.equal(refused.status, 303);
        const url = new URL(refused.location!);
        t.equal(`${url.origin}${url.pathname}`, redirect, 'never reaches the host');
        t.equal(url.searchParams.get('error'), 'login_required');
      });

      await t.test('Cancel: the client gets access_denied', async (t) => {
        const stranger = new Browser();
        const signInPage = await form(stranger, atHost(await authorize(stranger).page));
        const callback = await backToClient(stranger, await submit(stranger, signInPage, { action: 'cancel' }));
        t.equal(callback.searchParams.get('error'), 'access_denied');
      });

      await t.test('a login_request the host must not trust gets a 400', async (t) => {
        t.equal((await fetch(`${hostOrigin}/login?login_request=not-a-jwt`)).status, 400);
      });

      host.kill('SIGTERM');
      const end = await exited;
      t.notMatch(end.stderr, /Traceback|Error\b/, `the ${runtime.name} example ran without an error: ${end.stderr}`);
    });
  }
});
