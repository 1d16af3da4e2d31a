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
function stall(port: number, head: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(head));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ answer, ms: Date.now() - started }));
    // A server that never closes fails the test rather than hanging it.
    socket.setTimeout(15_000, () => socket.destroy(new Error('the server kept a stalled request open for 15 s')));
  });
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
});

t.test('headers that stall are answered 408 and the connection closed', async (t) => {
  const app = await buildTestApp(t, ENV);
  const port = await listening(app);
  const { answer, ms } = await stall(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  t.match(answer, /^HTTP\/1\.1 408 /, answer);
  t.ok(ms < 5000, `closed after ${ms} ms (HEADERS_TIMEOUT_SECONDS=1)`);
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
