import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import t from 'tap';
import { buildAdminApp } from '../../src/admin-app.js';
import { schemaLeaves } from '../../src/config/index.js';
import { freePort } from '../fixtures/listen.js';
import { buildTestApp } from '../helper.js';
import { exampleBlock } from './markdown.js';
import { curlRequest, shellCommands, shellWords } from './shell.js';

/**
 * docs/admin-api.md's example, as printed: the start command's settings are Gatehouse's configuration,
 * and each curl request is sent to a real admin listener and public listener (the page's ports mapped to
 * the free ones the test listens on). A change that breaks the example on a fresh setup fails here.
 */

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const markdown = read('docs/admin-api.md');
const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
const knownEnv = new Set(schemaLeaves().map((leaf) => leaf.env));
/** `$(openssl rand -base64 32)`: what the command prints, 32 random bytes in base64. */
const substitutions = { 'openssl rand -base64 32': randomBytes(32).toString('base64') };

/** The start block: `export NAME=…` lines and one `NAME=… npm start`, as the environment they set. */
function startEnvironment(t: Tap.Test): Record<string, string> {
  const env: Record<string, string> = {};
  let started = false;
  for (const command of shellCommands(exampleBlock(markdown, 'admin-start'))) {
    const words = shellWords(command, env, substitutions);
    if (words[0] === 'export') words.shift();
    const assignments = words.filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w));
    const rest = words.slice(assignments.length);
    for (const assignment of assignments) {
      const eq = assignment.indexOf('=');
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
    if (rest.length > 0) {
      t.same(rest, ['npm', 'start'], 'the example starts Gatehouse with npm start');
      t.ok(scripts.start, 'an npm script named start exists');
      started = true;
    }
  }
  t.ok(started, 'the start block starts Gatehouse');
  for (const name of Object.keys(env)) t.ok(knownEnv.has(name), `${name} is a configuration variable`);
  return env;
}

t.test("docs/admin-api.md's example works on a fresh setup, request by request", async (t) => {
  const docEnv = startEnvironment(t);
  t.equal(docEnv.ADMIN_TOKEN, substitutions['openssl rand -base64 32'], 'the admin token is the generated one');
  t.notOk(['4000', '4001', '4002', '4003'].includes(docEnv.ADMIN_PORT ?? ''), 'not a port npm run demo uses');

  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${publicPort}`;
  // The settings the page gives, nothing else but where to listen (and this file's database).
  const app = await buildTestApp(t, { ...docEnv, ADMIN_PORT: String(adminPort), ISSUER: issuer });
  await app.listen({ host: '127.0.0.1', port: publicPort });
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  await admin.listen({ host: app.config.admin.host, port: adminPort });

  // The page's addresses: the admin listener on ADMIN_HOST's default, the public one at the default ISSUER.
  const origins = new Map([
    [`http://127.0.0.1:${docEnv.ADMIN_PORT}`, `http://127.0.0.1:${adminPort}`],
    ['http://localhost:4000', issuer],
  ]);
  const shellEnv: Record<string, string> = { ...docEnv };
  const answers: Array<{ url: string; status: number; body: Record<string, unknown> }> = [];
  for (const command of shellCommands(exampleBlock(markdown, 'admin-requests'))) {
    if (command.startsWith('export CLIENT_SECRET=')) {
      // The reader copies the secret from the answer before.
      const secret = answers.at(-1)?.body.client_secret;
      t.type(secret, 'string', 'the answer before holds the client_secret to copy');
      shellEnv.CLIENT_SECRET = String(secret);
      continue;
    }
    const request = curlRequest(shellWords(command, shellEnv));
    const url = new URL(request.url);
    const origin = origins.get(url.origin);
    t.ok(origin, `${url.origin} is one of the example's listeners`);
    const res = await fetch(`${origin}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    const text = await res.text();
    answers.push({ url: `${request.method} ${url.pathname}`, status: res.status, body: text ? JSON.parse(text) : {} });
  }

  t.same(
    answers.map((a) => [a.url, a.status]),
    [
      ['POST /admin/clients', 201],
      ['POST /token', 200],
      ['GET /admin/clients/billing', 200],
      ['PATCH /admin/clients/billing', 200],
    ],
    `each request succeeds: ${JSON.stringify(answers.filter((a) => a.status >= 400))}`,
  );
  const [created, token, shown, disabled] = answers;
  t.match(created?.body, { client: { client_id: 'billing', scopes: ['read'] } });
  const claims = decodeJwt(String(token?.body.access_token));
  t.equal(claims.aud, docEnv.RESOURCES, 'the token is for the resource the example configures');
  t.equal(claims.scope, 'read');
  t.equal(claims.client_id, 'billing');
  t.match(shown?.body, { client: { client_id: 'billing', name: 'Billing' } });
  t.match(
    disabled?.body,
    { client: { client_id: 'billing', disabled_at: String } },
    'the client shows when it was disabled',
  );

  // "its secret stops working"
  const refused = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`billing:${shellEnv.CLIENT_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
  });
  t.equal(refused.status, 401, 'a disabled client gets no token');
});

t.test('the page uses no port the demo uses and one admin port throughout', async (t) => {
  t.notMatch(markdown, /[:=]400[1-3]\b/, 'no port of the demo (4001 to 4003) in an address or setting');
  const ports = new Set(
    [...markdown.matchAll(/ADMIN_PORT=(\d+)|127\.0\.0\.1:(\d+)|gatehouse:(\d+)/g)].map((m) => m[1] ?? m[2] ?? m[3]),
  );
  t.same([...ports], ['4010'], 'the admin port is the same everywhere');
});
