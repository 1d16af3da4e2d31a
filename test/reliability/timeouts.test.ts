import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildAdminApp } from '../../src/admin-app.js';
import { buildTestApp, testConfig } from '../helper.js';

const ENV = {
  REQUEST_TIMEOUT_SECONDS: '1',
  HEADERS_TIMEOUT_SECONDS: '1',
  ADMIN_PORT: '4999',
  ADMIN_TOKEN: randomBytes(32).toString('base64url'),
};

async function listening(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/** Sends `head` on a raw socket, then nothing; resolves with what came back, when the server closed, and how long it took. */
function stall(port: number, head: string, afterFirstAnswer?: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(head));
    let answer = '';
    let next = afterFirstAnswer;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      // Sent on the same connection once something came back (the first answer, kept alive).
      if (next !== undefined) socket.write(next);
      next = undefined;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ answer, ms: Date.now() - started }));
    // A server that never closes fails the test rather than hanging it.
    socket.setTimeout(15_000, () => socket.destroy(new Error('the server kept a stalled request open for 15 s')));
  });
}

/** The status line, headers (lower-cased names) and parsed JSON body of the last HTTP answer in `raw`. */
function lastAnswer(raw: string): { status: number; headers: Record<string, string>; body: unknown } {
  const start = raw.lastIndexOf('HTTP/1.1 ');
  const [head = '', body = ''] = raw.slice(start).split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) };
}

/** A timed-out or malformed request is answered with the OAuth error JSON, and the connection is closed. */
function oauthErrorAnswer(t: Tap.Test, raw: string, status: number): void {
  const answer = lastAnswer(raw);
  t.equal(answer.status, status);
  t.equal(answer.headers.connection, 'close', 'the server says it closes the connection');
  t.match(answer.headers['content-type'], /^application\/json/);
  t.same(Object.keys(answer.body as object).sort(), ['error', 'error_description'], 'the OAuth error JSON shape');
  t.equal((answer.body as { error: string }).error, 'invalid_request');
}

const SLOW_BODY =
  'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
  'Content-Length: 16000\r\n\r\ngrant_type=';

t.test('a request body that stalls is answered 408 and its connection closed', async (t) => {
  const app = await buildTestApp(t, ENV);
  const port = await listening(app);
  const { answer, ms } = await stall(port, SLOW_BODY);
  t.match(answer, /^HTTP\/1\.1 408 /, answer);
  t.ok(ms >= 900 && ms < 5000, `closed after ${ms} ms (REQUEST_TIMEOUT_SECONDS=1)`);
  oauthErrorAnswer(t, answer, 408);
});

t.test('headers that stall are answered 408 and the connection closed', async (t) => {
  const app = await buildTestApp(t, ENV);
  const port = await listening(app);
  const { answer, ms } = await stall(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  t.match(answer, /^HTTP\/1\.1 408 /, answer);
  t.ok(ms < 5000, `closed after ${ms} ms (HEADERS_TIMEOUT_SECONDS=1)`);
  oauthErrorAnswer(t, answer, 408);
});

t.test(
  'a malformed request on a keep-alive connection is answered 400 and the connection closed cleanly',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const port = await listening(app);
    // A good request keeps the connection alive; the bytes sent after its answer are not HTTP. stall()
    // fails on a reset, so the close must be a clean one.
    const { answer } = await stall(
      port,
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n',
      'NOT HTTP AT ALL\r\n\r\n',
    );
    t.match(answer, /^HTTP\/1\.1 200 /, 'the first request was answered');
    oauthErrorAnswer(t, answer, 400);
    t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'the server carries on');
  },
);

t.test('oversized headers are answered 431 with the OAuth error JSON', async (t) => {
  const app = await buildTestApp(t, ENV);
  const port = await listening(app);
  const { answer } = await stall(
    port,
    `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  );
  oauthErrorAnswer(t, answer, 431);
});

t.test('a prompt request still works with the short timeouts', async (t) => {
  const app = await buildTestApp(t, ENV);
  const port = await listening(app);
  const res = await fetch(`http://127.0.0.1:${port}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&client_id=nobody&client_secret=wrong',
  });
  t.equal(res.status, 401, 'answered by the token endpoint, not cut off');
  t.equal(((await res.json()) as { error: string }).error, 'invalid_client');
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
});

t.test('the admin listener has the same timeouts', async (t) => {
  const app = await buildTestApp(t, ENV);
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  const port = await listening(admin);
  const { answer, ms } = await stall(
    port,
    'POST /admin/clients HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Authorization: Bearer ${ENV.ADMIN_TOKEN}\r\nContent-Length: 500\r\n\r\n{`,
  );
  t.match(answer, /^HTTP\/1\.1 408 /, answer);
  t.ok(ms < 5000, `closed after ${ms} ms`);
  oauthErrorAnswer(t, answer, 408);
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
});

t.test('the timeouts are settings with sane defaults and a cross-check', async (t) => {
  const server = testConfig().server;
  t.equal(server.requestTimeout, 30);
  t.equal(server.headersTimeout, 10);
  t.equal(server.keepAliveTimeout, 72);
  t.equal(server.connectionTimeout, 120);
  t.throws(
    () => testConfig({ REQUEST_TIMEOUT_SECONDS: '5', HEADERS_TIMEOUT_SECONDS: '10' }),
    /HEADERS_TIMEOUT_SECONDS: must not exceed REQUEST_TIMEOUT_SECONDS/,
  );
  t.equal(testConfig({ REQUEST_TIMEOUT_SECONDS: '0', HEADERS_TIMEOUT_SECONDS: '10' }).server.requestTimeout, 0);
});
