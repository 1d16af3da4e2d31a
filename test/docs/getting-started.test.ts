import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import t from 'tap';
import { parse } from 'yaml';
import { loadConfig, schemaLeaves } from '../../src/config/index.js';
import { freePort } from '../fixtures/listen.js';
import { FILE_DATABASE_URL } from '../helper.js';
import { Browser } from '../kit/browser.js';
import { migratedPgliteDataDir, TEST_SCHEMA } from '../kit/database.js';
import { consentForm } from '../kit/flows.js';
import { finished, run, waitForLine } from '../process.js';
import { exampleBlock } from './markdown.js';
import { curlRequest, shellCommands, shellWords } from './shell.js';

/**
 * docs/getting-started.md, followed as a reader follows it, command by command: `npm start` (the npm
 * script's command, a real process) prints the first-run summary the page shows; the settings block is
 * Gatehouse's configuration; docs/handshake.md's Node example runs as the host app with the page's command
 * line; the page's `clients create` runs as a real CLI process on the same database; Gatehouse starts again
 * and says it is ready; the page's PKCE commands run; the browser step (authorize → the host's /login →
 * sign-in → Gatehouse → consent → the redirect with the code) is driven over HTTP; the page's curl requests
 * exchange the code, introspect and refresh; and the page's verify.mjs checks the token against the JWKS.
 * The page's ports (Gatehouse 4000, host app 4080) are mapped to free ones; everything listens on 127.0.0.1.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const markdown = read('docs/getting-started.md');
const handshake = read('docs/handshake.md');
const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
const knownEnv = new Set(schemaLeaves().map((leaf) => leaf.env));

/** The page's ports of what the reader starts, as the page writes them. */
const PAGE_GATEHOUSE_PORT = 4000;
const PAGE_HOST_PORT = 4080;
/** Where the page's client is sent back (nothing listens there: the reader copies the code). */
const REDIRECT_URI = 'http://127.0.0.1:4090/callback';

type Env = Record<string, string>;

/** What `openssl rand -base64 N` prints: N random bytes in base64 (as the other doc tests, without openssl). */
function opensslRand(command: string): string | undefined {
  const match = /^openssl rand -base64 (\d+)$/.exec(command.trim());
  return match ? randomBytes(Number(match[1])).toString('base64') : undefined;
}

/** A node command the page runs, run for real (in `env`, as exported variables); its stdout. */
function runNode(words: string[], env: Env, cwd = root): string {
  if (words[0] !== 'node') throw new Error(`not a node command: ${words.join(' ')}`);
  const res = spawnSync(process.execPath, words.slice(1), {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (res.status !== 0) throw new Error(`${words.join(' ')} failed (${res.status}): ${res.stderr}`);
  return res.stdout;
}

/**
 * Replaces each `$(…)` (parentheses balanced, so the page may run node code in one) with what the command
 * prints: `openssl rand` as above, `node …` run for real. Values are checked to be plain tokens, so pasting
 * them back into the command line cannot change how it reads.
 */
function substituteCommands(command: string, env: Env): string {
  let out = '';
  let i = 0;
  while (i < command.length) {
    const start = command.indexOf('$(', i);
    if (start < 0) break;
    let depth = 0;
    let end = start + 1;
    for (; end < command.length; end++) {
      if (command[end] === '(') depth++;
      else if (command[end] === ')' && --depth === 0) break;
    }
    if (end >= command.length) throw new Error(`unclosed $( in: ${command}`);
    const inner = command.slice(start + 2, end);
    const value = opensslRand(inner) ?? runNode(shellWords(inner, env), env).trim();
    if (!/^[A-Za-z0-9+/=_-]+$/.test(value)) throw new Error(`$(${inner}) printed ${JSON.stringify(value)}`);
    out += command.slice(i, start) + value;
    i = end + 1;
  }
  return out + command.slice(i);
}

interface Ports {
  gatehouse: number;
  host: number;
}

/** The page's text with its ports replaced by the test's. */
function mapPorts(text: string, ports: Ports): string {
  return text
    .replace(new RegExp(`\\b${PAGE_GATEHOUSE_PORT}\\b`, 'g'), String(ports.gatehouse))
    .replace(new RegExp(`\\b${PAGE_HOST_PORT}\\b`, 'g'), String(ports.host));
}

/**
 * Runs one block of the page in a terminal whose variables are `env`: `export NAME=…` lines set them (a
 * `'<…>'` value is one the reader copies from an earlier output: `copy` says what that is); any other
 * command goes to `command` with the words and the `NAME=…` assignments before it.
 */
async function runBlock(
  name: string,
  ports: Ports,
  env: Env,
  command: (words: string[], assignments: Env) => Promise<void> | void,
  copy: Record<string, () => string> = {},
): Promise<void> {
  for (const line of shellCommands(mapPorts(exampleBlock(markdown, name), ports))) {
    let words = shellWords(substituteCommands(line, env), env);
    const exported = words[0] === 'export';
    if (exported) words = words.slice(1);
    const assignments: Env = {};
    while (words[0] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
      const word = words.shift()!;
      const eq = word.indexOf('=');
      let value = word.slice(eq + 1);
      if (/^<.+>$/.test(value)) {
        const from = copy[word.slice(0, eq)];
        if (!from) throw new Error(`block ${name}: nothing says what to copy into ${word}`);
        value = from();
      }
      assignments[word.slice(0, eq)] = value;
    }
    if (words.length === 0) Object.assign(env, assignments);
    else if (exported) throw new Error(`block ${name}: export with a command: ${line}`);
    else await command(words, assignments);
  }
}

/** The `msg` of each JSON log line printed so far. */
function messages(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => String((JSON.parse(line) as { msg?: unknown }).msg));
}

/** The setup summary and readiness lines, as the page shows them. */
const summaryOf = (stdout: string) =>
  messages(stdout).filter((m) => m.startsWith('setup:') || m.startsWith('Gatehouse ready'));

interface Server {
  child: ChildProcess;
  stdout: () => string;
  /** Stops it as Ctrl+C does; resolves with its exit code. */
  stop: () => Promise<number | null>;
}

/** `npm start` as the npm script runs it, in the checkout, with exactly `env` (and PATH). */
async function npmStart(t: Tap.Test, env: Env): Promise<Server> {
  const [node, ...args] = scripts.start!.split(' ');
  t.equal(node, 'node', 'npm start runs node');
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = finished(child, 110_000);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await waitForLine(child, /"msg":"Gatehouse (ready at|is listening at)[^"]*"/, 90_000).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${(await exited).stderr}`);
  });
  return {
    child,
    stdout: () => stdout,
    stop: async () => {
      child.kill('SIGINT');
      return (await exited).code;
    },
  };
}

t.test('the page names its blocks for this test and points to what exists', async (t) => {
  for (const name of [
    'start',
    'first-run-log',
    'secret',
    'settings',
    'host-app',
    'register',
    'restart',
    'ready-log',
    'authorize',
    'token',
    'verify-js',
    'token-answer',
    'verify',
    'refresh',
  ])
    t.ok(exampleBlock(markdown, name), `block ${name}`);
  t.match(
    handshake,
    /### Node \(jose\)\n\n<!-- example: node -->\n/,
    'handshake.md has the Node example the page names',
  );
  t.match(handshake, /^## Worked examples$/m);
  t.match(handshake, /^## Configuration$/m);
  for (const [, target] of markdown.matchAll(/\]\(([^)#]+\.md)(?:#[^)]*)?\)/g))
    t.ok(existsSync(join(root, 'docs', target!)), `${target} exists`);
  t.ok(existsSync(join(root, 'package-lock.json')), 'npm ci has a lockfile');
  t.same(shellCommands(exampleBlock(markdown, 'start')), ['npm ci', 'npm start']);
  t.same(shellCommands(exampleBlock(markdown, 'restart')), ['npm start']);
});

t.test('the settings are configuration variables, and Docker passes each one to Gatehouse', async (t) => {
  const names = shellCommands(exampleBlock(markdown, 'settings')).map((c) => /^export ([A-Z_]+)=/.exec(c)?.[1]);
  t.same(names, ['ISSUER', 'SIGN_IN_URL', 'HOST_ID', 'HANDSHAKE_SECRET', 'SCOPES', 'RESOURCES']);
  for (const name of names) t.ok(knownEnv.has(name!), `${name} is a configuration variable`);
  // "the default": the page's ISSUER is what Gatehouse uses without one.
  const issuer = /^export ISSUER=(\S+)$/m.exec(exampleBlock(markdown, 'settings'))?.[1];
  t.equal(loadConfig({}).config.issuer, issuer, 'the page sets the default issuer');
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, { environment: Record<string, string> }>;
  };
  const environment = compose.services.gatehouse!.environment;
  for (const name of names)
    t.match(environment[name!], new RegExp(`^\\$\\{${name}(:-[^}]*)?\\}$`), `compose passes ${name} through`);
});

t.test('the page uses no port of npm run demo, and the same ports throughout', async (t) => {
  t.notMatch(markdown, /[:=]400[1-3]\b/, 'no port of the demo (4001 to 4003) in an address or setting');
  const ports = new Set(
    [...markdown.matchAll(/(?:localhost|127\.0\.0\.1):(\d+)|PORT=(\d+)/g)].map((m) => m[1] ?? m[2]),
  );
  t.same([...ports].sort(), ['4000', '4080', '4090']);
  t.match(markdown, `SIGN_IN_URL=http://127.0.0.1:${PAGE_HOST_PORT}/login`);
  const callbacks = [...markdown.matchAll(/http:\/\/127\.0\.0\.1:4090\/[^\s?&`]*/g)].map((m) => m[0]);
  t.ok(callbacks.length >= 3, 'registered, authorized and exchanged');
  t.same(new Set(callbacks), new Set([REDIRECT_URI]), 'one redirect URI throughout');
});

t.test('from nothing to a verified access token, command by command', async (t) => {
  const ports: Ports = { gatehouse: await freePort(), host: await freePort() };
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-getting-started-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The reader's ./data/pglite (a copy of the migrated database), or this file's Postgres database.
  const database: Env = FILE_DATABASE_URL
    ? { DATABASE_URL: FILE_DATABASE_URL, DATABASE_SCHEMA: TEST_SCHEMA }
    : { DATA_DIR: await migratedPgliteDataDir(join(dir, 'pglite')) };
  // Only where to listen differs from the reader's machine (HOST is left at its default, 127.0.0.1).
  const where: Env = { ...database, PORT: String(ports.gatehouse) };

  // 1. npm start with nothing set: the first-run summary, as the page prints it; then Ctrl+C.
  const first = await npmStart(t, where);
  t.match(first.stdout(), `"msg":"Server listening at http://127.0.0.1:${ports.gatehouse}"`, 'on 127.0.0.1 only');
  t.same(
    summaryOf(first.stdout()),
    mapPorts(exampleBlock(markdown, 'first-run-log'), ports).split('\n'),
    'the first-run summary is the one the page shows',
  );
  t.match(first.stdout(), /KEY_ENCRYPTION_SECRET is empty/, 'the warning the page mentions');
  t.equal(await first.stop(), 0, 'Ctrl+C stops it cleanly');

  // 2. The secret, then the settings block, pasted into each terminal.
  let opensslOutput = '';
  await runBlock('secret', ports, {}, (words) => {
    opensslOutput = opensslRand(words.join(' ')) ?? '';
    t.ok(opensslOutput, `${words.join(' ')} is openssl rand -base64`);
  });
  t.equal(opensslOutput.length, 44, 'openssl prints 44 characters');
  const settings: Env = {};
  await runBlock(
    'settings',
    ports,
    settings,
    (words) => {
      throw new Error(`the settings block runs ${words.join(' ')}`);
    },
    { HANDSHAKE_SECRET: () => opensslOutput },
  );
  t.equal(settings.HANDSHAKE_SECRET, opensslOutput, 'the secret is the string openssl printed, as written');
  const issuer = settings.ISSUER!;
  t.equal(issuer, `http://localhost:${ports.gatehouse}`);

  // 3. The host app: docs/handshake.md's Node example, saved as host.mjs where jose is installed.
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  await writeFile(join(dir, 'host.mjs'), exampleBlock(handshake, 'node'));
  const hostTerminal: Env = { ...settings };
  let password = '';
  let host: ChildProcess | undefined;
  await runBlock('host-app', ports, hostTerminal, async (words, assignments) => {
    if (words[0] === 'echo') {
      password = /^alice's password: (\S+)$/.exec(words.slice(1).join(' '))?.[1] ?? '';
      return;
    }
    t.same(words, ['node', 'host.mjs'], 'the host app runs with node');
    host = spawn(process.execPath, ['host.mjs'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...hostTerminal, ...assignments },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = host;
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const [line] = await waitForLine(child, /host app listening on \S+/);
    t.match(mapPorts(markdown, ports), `It prints \`${line}\``, 'it prints what the page says');
  });
  t.ok(host, 'the host app runs');
  t.equal(password, hostTerminal.EXAMPLE_PASSWORD, "the reader reads alice's password from the echo");
  const hostOrigin = `http://127.0.0.1:${ports.host}`;
  t.equal(settings.SIGN_IN_URL, `${hostOrigin}/login`, 'SIGN_IN_URL is the host app');

  // 4. clients create, a real CLI process on the same database, with Gatehouse stopped.
  const commandTerminal: Env = { ...settings };
  let cliOutput = '';
  await runBlock('register', ports, commandTerminal, async (words) => {
    t.same(words.slice(0, 4), ['npm', 'run', 'gatehouse', '--'], 'npm run gatehouse -- …');
    const [node, cli] = scripts.gatehouse!.split(' ');
    t.equal(node, 'node');
    const res = await run([join(root, cli!), ...words.slice(4)], { ...commandTerminal, ...database }, 90_000);
    t.equal(res.code, 0, res.stderr);
    cliOutput = res.stdout;
  });
  t.match(cliOutput, /^Created client "My app"\.$/m);
  const clientId = /^client_id: +(\S+)$/m.exec(cliOutput)?.[1] ?? '';
  const clientSecret = /^client_secret: +(\S+)$/m.exec(cliOutput)?.[1] ?? '';
  t.ok(clientId && clientSecret, 'the CLI prints a client_id and a client_secret');

  // npm start again with the settings: ready to serve flows.
  const second = await npmStart(t, { ...commandTerminal, ...where });
  t.same(
    summaryOf(second.stdout()),
    mapPorts(exampleBlock(markdown, 'ready-log'), ports).split('\n'),
    'the summary says a flow can run, as the page shows',
  );
  t.teardown(() => second.stop());

  // 5. A third terminal: the client, PKCE, the authorization URL.
  const flowTerminal: Env = { ...settings };
  let authorizationUrl = '';
  await runBlock(
    'authorize',
    ports,
    flowTerminal,
    (words) => {
      t.equal(words[0], 'echo');
      authorizationUrl = words.slice(1).join(' ');
    },
    { CLIENT_ID: () => clientId, CLIENT_SECRET: () => clientSecret },
  );
  t.match(flowTerminal.CODE_VERIFIER, /^[A-Za-z0-9_-]{43}$/, 'a PKCE verifier (RFC 7636 §4.1)');
  t.match(flowTerminal.CODE_CHALLENGE, /^[A-Za-z0-9_-]{43}$/);
  t.not(flowTerminal.CODE_CHALLENGE, flowTerminal.CODE_VERIFIER);

  // The browser step: open the URL, sign in at the host app, allow on the consent page.
  const browser = new Browser();
  const authorize = await browser.get(authorizationUrl);
  t.equal(
    authorize.status,
    303,
    `authorize: ${authorize.status === 303 ? 'as expected' : authorize.body.slice(0, 500)}`,
  );
  t.match(authorize.location, `${hostOrigin}/login?login_request=`, "Gatehouse sends the browser to the app's /login");
  const signInPage = await browser.get(authorize.location!);
  t.equal(
    signInPage.status,
    200,
    `signInPage: ${signInPage.status === 200 ? 'as expected' : signInPage.body.slice(0, 500)}`,
  );
  t.match(signInPage.body, 'Sign in to continue to My app', 'the sign-in page the page describes');
  const signInForm = consentForm(signInPage.body, new URL(signInPage.url));
  const signedIn = await browser.post(signInForm.action, {
    ...signInForm.fields,
    username: 'alice',
    password,
    action: 'sign-in',
  });
  t.equal(signedIn.status, 303, `signedIn: ${signedIn.status === 303 ? 'as expected' : signedIn.body.slice(0, 500)}`);
  t.match(signedIn.location, `${issuer}/sign-in/complete?login_response=`, 'the app sends the browser back');
  const complete = await browser.get(signedIn.location!);
  t.equal(complete.status, 303, `complete: ${complete.status === 303 ? 'as expected' : complete.body.slice(0, 500)}`);
  t.match(complete.location, `${issuer}/consent?request=`, 'then to the consent page');
  const consent = await browser.get(complete.location!);
  t.equal(consent.status, 200, `consent: ${consent.status === 200 ? 'as expected' : consent.body.slice(0, 500)}`);
  for (const text of ['My app', 'Read your data', 'https://api.example.com'])
    t.match(consent.body, text, `the consent page shows ${text}`);
  const decision = consentForm(consent.body, new URL(consent.url));
  const allowed = await browser.post(decision.action, { ...decision.fields, decision: 'allow' });
  t.equal(allowed.status, 303, `allowed: ${allowed.status === 303 ? 'as expected' : allowed.body.slice(0, 500)}`);
  const callback = new URL(allowed.location!);
  t.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI, 'the browser goes to the redirect URI');
  t.equal(callback.searchParams.get('state'), 'first-flow');
  t.equal(callback.searchParams.get('iss'), issuer);
  const code = callback.searchParams.get('code') ?? '';
  t.ok(code, `a code, not ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`);

  // "a code works once, and opening the URL again gives a new one" (signed in, consent remembered).
  const again = await browser.get(authorizationUrl);
  t.equal(again.status, 303, again.body);
  const reopened = new URL(again.location!);
  t.equal(`${reopened.origin}${reopened.pathname}`, REDIRECT_URI, 'straight back to the client');
  t.ok(reopened.searchParams.get('code'), 'with a code');
  t.not(reopened.searchParams.get('code'), code, 'a new one');

  // The page's curl requests, sent as curl sends them; each answer is what the reader reads next.
  let answer: Record<string, unknown> = {};
  const answers: Array<{ path: string; status: number }> = [];
  const curl = async (words: string[]) => {
    const request = curlRequest(words);
    const res = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    answer = (await res.json()) as Record<string, unknown>;
    answers.push({ path: new URL(request.url).pathname, status: res.status });
    t.equal(res.status, 200, `${request.method} ${request.url}: ${JSON.stringify(answer)}`);
  };
  await runBlock('token', ports, flowTerminal, curl, {
    CODE: () => code,
    ACCESS_TOKEN: () => String(answer.access_token),
    REFRESH_TOKEN: () => String(answer.refresh_token),
  });
  // The answer the page shows: the same members, and the same values where it prints them.
  const shown = JSON.parse(exampleBlock(markdown, 'token-answer').replaceAll('"…"', 'null')) as Record<string, unknown>;
  t.same(Object.keys(answer), Object.keys(shown), 'the members the page shows, in order');
  for (const [name, value] of Object.entries(shown)) {
    if (value === null) t.type(answer[name], 'string', `${name} is a string`);
    else t.equal(answer[name], value, `${name} is ${JSON.stringify(value)}`);
  }
  const claims = decodeJwt(flowTerminal.ACCESS_TOKEN!);
  t.match(claims, { iss: issuer, aud: settings.RESOURCES, sub: 'user-1', client_id: clientId, scope: 'read' });

  // 6. verify.mjs against the JWKS, and /introspect.
  await writeFile(join(dir, 'verify.mjs'), exampleBlock(markdown, 'verify-js'));
  let verified = '';
  await runBlock('verify', ports, flowTerminal, async (words) => {
    if (words[0] === 'curl') return curl(words);
    t.same(words, ['node', 'verify.mjs']);
    verified = runNode(words, flowTerminal, dir);
  });
  t.equal(verified, `valid: sub=user-1 client_id=${clientId} scope=read\n`, 'verify.mjs accepts the token');
  t.match(answer, { active: true, sub: 'user-1', client_id: clientId, scope: 'read', aud: settings.RESOURCES });
  t.match(markdown, 'prints `valid: sub=user-1 client_id=… scope=read`');

  // The refresh: new tokens, the refresh token rotated.
  await runBlock('refresh', ports, flowTerminal, curl);
  t.match(answer, { token_type: 'Bearer', scope: 'read', access_token: String, refresh_token: String });
  t.not(answer.refresh_token, flowTerminal.REFRESH_TOKEN, 'a new refresh token');
  t.equal(decodeJwt(String(answer.access_token)).sub, 'user-1');

  t.same(
    answers,
    [
      { path: '/token', status: 200 },
      { path: '/introspect', status: 200 },
      { path: '/token', status: 200 },
    ],
    'every request of the page succeeds',
  );

  host!.kill('SIGTERM');
  t.equal(await second.stop(), 0, 'Gatehouse stops cleanly');
});
