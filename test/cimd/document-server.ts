import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The test-only self-signed certificate for 127.0.0.1 (CIMD_CA_FILE trusts it) and its key. */
export const CERT_FILE = new URL('../fixtures/cimd-tls.crt', import.meta.url).pathname;
const KEY_FILE = new URL('../fixtures/cimd-tls.key', import.meta.url).pathname;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A client's web server on https://127.0.0.1:<port> serving metadata documents, counting requests per path. */
export interface DocumentServer {
  origin: string;
  /** Serves `handler` at `path` (replacing what was there). */
  route(path: string, handler: Handler): void;
  /** Serves `doc` as JSON at `path`, with extra headers. */
  json(path: string, doc: unknown, headers?: Record<string, string>): void;
  /** Requests received for a path. */
  hits(path: string): number;
  /** Requests received in all. */
  total(): number;
}

/** Starts a document server for test `t`, closed when it ends. */
export async function startDocumentServer(t: Tap.Test): Promise<DocumentServer> {
  const routes = new Map<string, Handler>();
  const counts = new Map<string, number>();
  const server: Server = createServer({ key: readFileSync(KEY_FILE), cert: readFileSync(CERT_FILE) }, (req, res) => {
    const path = new URL(req.url ?? '/', 'https://127.0.0.1').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const handler = routes.get(path);
    if (handler) return handler(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://127.0.0.1:${port}`,
    route: (path, handler) => routes.set(path, handler),
    json(path, doc, headers = {}) {
      routes.set(path, (_req, res) =>
        res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(doc)),
      );
    },
    hits: (path) => counts.get(path) ?? 0,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
  };
}

/** Settings that turn CIMD on and make Gatehouse trust the test server (private addresses allowed, short timeout). */
export const CIMD_ENV: Record<string, string> = {
  CIMD_ENABLED: 'true',
  CIMD_ALLOW_PRIVATE_ADDRESSES: 'true',
  CIMD_CA_FILE: CERT_FILE,
  CIMD_FETCH_TIMEOUT_MS: '400',
};

/** A valid client-id document for `clientId`, as an MCP client would publish it. */
export function clientIdDocument(clientId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: 'Example MCP Client',
    redirect_uris: ['http://127.0.0.1:53123/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}
