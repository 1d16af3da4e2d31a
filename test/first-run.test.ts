import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pkce } from './kit/pkce.js';
import { buildTestApp } from './helper.js';
import { CLI, finished, waitForLine } from './process.js';

// Issue 13, a first run that guides: `gatehouse serve` says what a flow needs and what is missing, each
// with its fix; it says "ready" only when /readyz does; the 503 page says what to set.

// The defaults a new user has (development mode, as `npm start`), with a key-encryption secret set.
const ENV = {
  LOG_LEVEL: 'info',
  PORT: '0',
  KEY_ENCRYPTION_SECRET: 'first-run-test-key-encryption-secret-0123456789',
};

interface Line {
  level: string | number;
  msg: string;
  [key: string]: unknown;
}

/** Starts `serve` on a fresh embedded database with `env`, until `until` is logged; its log lines. */
async function serve(t: Tap.Test, env: Record<string, string>, until: RegExp): Promise<Line[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-first-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...ENV, DATA_DIR: join(dir, 'data'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = finished(child, 90_000);
  await waitForLine(child, until, 90_000);
  child.kill('SIGTERM');
  const out = await done;
  return out.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

t.test('a bare start says what a flow is missing, each with the variable or command that fixes it', async (t) => {
  const lines = await serve(t, {}, /Gatehouse ready/);
  const msgs = lines.map((l) => l.msg);
  const summary = msgs.find((m) => m.startsWith('setup: '));
  t.match(summary, 'sign-in MISSING, scopes MISSING, resources MISSING, clients MISSING', 'the summary');
  const fixes = lines.filter((l) => l.level === 'warn' && typeof l.setup === 'string');
  t.same(
    fixes.map((l) => l.setup),
    ['sign-in', 'scopes', 'resources', 'clients'],
    'one line per missing thing',
  );
  t.match(fixes[0]!.msg, /SIGN_IN_URL.*HANDSHAKE_SECRET/);
  t.match(fixes[1]!.msg, /SCOPES/);
  t.match(fixes[2]!.msg, /RESOURCES/);
  t.match(fixes[3]!.msg, /gatehouse clients create/);
  t.ok(
    msgs.indexOf(summary!) < msgs.findIndex((m) => m.startsWith('Gatehouse ready')),
    'the summary comes before "ready"',
  );
});

t.test('a configured start says it is ready to serve flows, with no fix lines', async (t) => {
  const lines = await serve(
    t,
    {
      SIGN_IN_URL: 'https://app.example.com/login',
      HANDSHAKE_SECRET: 'a-handshake-secret-of-at-least-32-bytes-0123',
      SCOPES: '{"read":"Read your data"}',
      RESOURCES: 'https://api.example.com',
      DCR_ENABLED: 'true',
    },
    /Gatehouse ready/,
  );
  const summary = lines.find((l) => l.msg.startsWith('setup: '));
  t.match(summary?.msg, 'sign-in ok, scopes ok, resources ok, clients ok: ready to serve flows');
  t.match(summary?.setup, { clients: /dynamic registration/, resources: /api\.example\.com/ });
  t.same(
    lines.filter((l) => l.level === 'warn' && typeof l.setup === 'string'),
    [],
    'nothing missing',
  );
});

t.test('AUTO_MIGRATE=false on an empty database: not "ready", but what to run', async (t) => {
  const lines = await serve(t, { AUTO_MIGRATE: 'false' }, /NOT READY/);
  const msgs = lines.map((l) => l.msg);
  t.notOk(
    msgs.some((m) => m.startsWith('Gatehouse ready')),
    'never says ready while /readyz answers 503',
  );
  const notReady = lines.find((l) => l.msg.includes('NOT READY'));
  t.equal(notReady?.level, 'warn');
  t.match(notReady?.msg, /migration\(s\) pending.*AUTO_MIGRATE=false: run `gatehouse migrate up`/);
});

t.test('the 503 page of an unconfigured sign-in says what to set', async (t) => {
  const app = await buildTestApp(t, { SCOPES: 'read', RESOURCES: 'https://api.example.com' });
  const { client } = await app.clientAdmin.create({
    name: 'First app',
    redirect_uris: ['https://app.example.com/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
  });
  const { challenge } = pkce();
  const res = await app.inject({
    method: 'GET',
    url: `/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: 'https://app.example.com/callback',
      scope: 'read',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 's',
    })}`,
  });
  t.equal(res.statusCode, 503);
  t.match(res.body, /SIGN_IN_URL/);
  t.match(res.body, /HANDSHAKE_SECRET/);
  t.match(res.body, /docs\/handshake\.md/);
});
