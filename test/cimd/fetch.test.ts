import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Socket } from 'node:net';
import t from 'tap';
import {
  type FetchPolicy,
  fetchClientIdDocument,
  ClientIdDocumentFetchError,
  NOT_FETCHED,
} from '../../src/oauth/client-id-document-fetch.js';
import { CERT_FILE, startDocumentServer } from './document-server.js';

const POLICY: FetchPolicy = {
  timeoutMs: 400,
  maxBytes: 5120,
  allowPrivateAddresses: true,
  ca: readFileSync(CERT_FILE, 'utf8'),
};

async function failure(url: string, policy: FetchPolicy = POLICY): Promise<ClientIdDocumentFetchError> {
  const err = await fetchClientIdDocument(new URL(url), policy).then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof ClientIdDocumentFetchError))
    throw new Error(`expected a ClientIdDocumentFetchError, got ${String(err)}`);
  return err;
}

/** The reason a fetch fails with, safe to show; a document-level failure has no log-only detail. */
async function reason(url: string, policy: FetchPolicy = POLICY): Promise<string> {
  const err = await failure(url, policy);
  if (err.detail !== undefined)
    throw new Error(`expected a document-level failure, got the connection-level ${err.detail}`);
  return err.message;
}

/** The log-only detail of a connection-level failure, whose shown reason must say no more than NOT_FETCHED. */
async function connectionDetail(url: string, policy: FetchPolicy = POLICY): Promise<string> {
  const err = await failure(url, policy);
  if (err.message !== NOT_FETCHED || err.detail === undefined)
    throw new Error(`expected a connection-level failure, got ${err.message}`);
  return err.detail;
}

t.test('a 200 JSON document is read with its headers', async (t) => {
  const server = await startDocumentServer(t);
  server.json('/client.json', { hello: 'world' }, { 'cache-control': 'max-age=600' });
  const fetched = await fetchClientIdDocument(new URL(`${server.origin}/client.json`), POLICY);
  t.same(JSON.parse(fetched.body), { hello: 'world' });
  t.equal(fetched.headers['cache-control'], 'max-age=600');
  server.route('/vendor.json', (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/client-metadata+json; charset=utf-8' }).end('{}'),
  );
  t.equal(
    (await fetchClientIdDocument(new URL(`${server.origin}/vendor.json`), POLICY)).body,
    '{}',
    'application/<x>+json is JSON too',
  );
});

t.test('redirects are never followed (draft section 5)', async (t) => {
  const server = await startDocumentServer(t);
  server.json('/target.json', {});
  for (const status of [301, 302, 303, 307, 308]) {
    server.route('/moved.json', (_req, res) =>
      res.writeHead(status, { location: `${server.origin}/target.json` }).end(),
    );
    t.match(await reason(`${server.origin}/moved.json`), new RegExp(`answered ${status} \\(a redirect\\)`));
  }
  t.equal(server.hits('/target.json'), 0, 'the target was never requested');
});

t.test('a body larger than the cap is refused, declared or streamed (draft section 8.7)', async (t) => {
  const server = await startDocumentServer(t);
  const big = JSON.stringify({ padding: 'x'.repeat(6000) });
  server.route('/declared.json', (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(big.length) }).end(big),
  );
  server.route('/chunked.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(big.slice(0, 3000));
    setTimeout(() => res.end(big.slice(3000)), 20);
  });
  t.match(await reason(`${server.origin}/declared.json`), /larger than 5120 bytes/);
  t.match(await reason(`${server.origin}/chunked.json`), /larger than 5120 bytes/);
  const exact = JSON.stringify({ p: 'x'.repeat(5120 - 8) });
  t.equal(exact.length, 5120);
  server.route('/exact.json', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(exact));
  t.equal(
    (await fetchClientIdDocument(new URL(`${server.origin}/exact.json`), POLICY)).body,
    exact,
    'exactly the cap is read',
  );
});

t.test('a server that never answers times out quickly', async (t) => {
  const server = await startDocumentServer(t);
  server.route('/hang.json', () => {
    // never answers
  });
  const started = Date.now();
  t.match(await connectionDetail(`${server.origin}/hang.json`), /no complete answer within 400 ms/);
  t.ok(Date.now() - started < 2000, 'gave up at the timeout');

  // A TCP server that accepts but never speaks TLS: the timeout covers the handshake too.
  const sockets: Socket[] = [];
  const silent = createNetServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  t.match(await connectionDetail(`https://127.0.0.1:${port}/client.json`), /no complete answer within 400 ms/);
});

t.test('connection-level failures show only "could not be fetched"; the detail is for the log', async (t) => {
  // A port with nothing listening: refused.
  const closed = createNetServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  t.equal(await connectionDetail(`https://127.0.0.1:${port}/client.json`), 'the connection was refused');

  // A server that accepts and hangs up at once: reset, or closed before TLS completes.
  const rude = createNetServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
  t.teardown(() => rude.close());
  // Which detail depends on when the hang-up is noticed (reset, closed before the address, TLS); none is shown.
  t.match(
    await connectionDetail(`https://127.0.0.1:${(rude.address() as { port: number }).port}/client.json`),
    /connection|request failed|TLS/,
  );

  t.match(
    await connectionDetail('https://gatehouse-test.invalid/client.json'),
    /does not resolve/,
    'RFC 6761: .invalid never resolves',
  );
});

t.test('only a 200 with a JSON content type is accepted', async (t) => {
  const server = await startDocumentServer(t);
  server.route('/html.json', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>'));
  server.route('/none.json', (_req, res) => {
    res.removeHeader('content-type');
    res.writeHead(200).end('{}');
  });
  server.route('/gone.json', (_req, res) => res.writeHead(410, { 'content-type': 'application/json' }).end('{}'));
  server.route('/created.json', (_req, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{}'));
  server.route('/gzip.json', (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end('xx'),
  );
  t.match(await reason(`${server.origin}/html.json`), /content type is "text\/html", not application\/json/);
  t.match(await reason(`${server.origin}/none.json`), /content type is missing/);
  t.match(await reason(`${server.origin}/gone.json`), /answered 410, not 200/);
  t.match(await reason(`${server.origin}/created.json`), /answered 201, not 200/);
  t.match(await reason(`${server.origin}/missing.json`), /answered 404, not 200/);
  t.match(await reason(`${server.origin}/gzip.json`), /gzip-encoded/);
});

t.test('special-use addresses are refused before any connection unless allowed (draft section 8.6)', async (t) => {
  const server = await startDocumentServer(t);
  server.json('/client.json', {});
  const strict = { ...POLICY, allowPrivateAddresses: false };
  const port = new URL(server.origin).port;
  t.match(await reason(`${server.origin}/client.json`, strict), /host is a special-use address \(loopback/);
  t.match(await reason(`https://[::1]:${port}/client.json`, strict), /special-use address \(loopback/);
  t.match(await reason(`https://[::ffff:127.0.0.1]:${port}/client.json`, strict), /IPv4-mapped loopback/);
  t.match(
    await reason(`https://localhost:${port}/client.json`, strict),
    /resolves to a special-use address \(loopback/,
    'names are checked after resolution',
  );
  t.match(
    await reason(`https://10.255.255.1/client.json`, strict),
    /private/,
    'no connection is attempted to a private address',
  );
  t.match(
    await reason(`https://169.254.169.254/latest/meta-data`, strict),
    /link-local/,
    'cloud metadata endpoints are out of reach',
  );
  t.equal(server.total(), 0, 'the server never saw a request');
});

t.test('only https is fetched, and the TLS certificate must be trusted', async (t) => {
  const server = await startDocumentServer(t);
  server.json('/client.json', {});
  t.match(await reason(`http://127.0.0.1:${new URL(server.origin).port}/client.json`), /only https/);
  t.match(
    await connectionDetail(`${server.origin}/client.json`, { ...POLICY, ca: null }),
    /TLS connection failed/,
    'without CIMD_CA_FILE the self-signed certificate is refused',
  );
  t.equal(server.total(), 0);
});
