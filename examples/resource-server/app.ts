import cors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import { requireToken, serveMetadata, tokenOf } from '../protected-resource/fastify.js';
import { DPOP_ALGORITHMS, ProtectedResource } from '../protected-resource/protected-resource.js';

export {
  challenge,
  markFetchFailures,
  metadataUrlFor,
  PRM_PATH,
  type AccessToken,
} from '../protected-resource/protected-resource.js';

/**
 * A resource server (an API, an MCP server) that verifies Gatehouse's JWT access tokens OFFLINE: one JWKS
 * fetch (cached, refetched on an unknown `kid`), then every request is checked locally, with no call to
 * Gatehouse. Bearer tokens (RFC 6750) and DPoP-bound tokens with their proofs (RFC 9449) are accepted;
 * refusals are 401/403 with the WWW-Authenticate challenges of RFC 6750 §3, RFC 9449 §7.1 and RFC 9728
 * §5.1, and the RFC 9728 Protected Resource Metadata tells clients (MCP clients) where the authorization
 * server is. All of it is the reusable module in ../protected-resource; this file is the app around it.
 * See docs/resource-servers.md.
 */

export interface ResourceServerOptions {
  /** Gatehouse's ISSUER, exactly: the required `iss`. */
  issuer: string;
  /** Where Gatehouse publishes its keys; `<issuer>/.well-known/jwks.json` by default. */
  jwksUri?: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The protected path (GET and POST); `/mcp` by default. */
  path?: string;
  /** The scope a token must carry; `read` by default ('' for none). */
  requiredScope?: string;
  /** Signature algorithms accepted (never `none`, never HS*). */
  algorithms?: string[];
  clockToleranceSeconds?: number;
  /**
   * This API's resource identifier: the `aud` tokens must carry, one of Gatehouse's RESOURCES. By
   * default `http://<host>:<bound port><path>`; set it when clients reach the API by another URL (a proxy,
   * a container's published port).
   */
  resource?: string;
  /** `required`: only DPoP-bound tokens (RFC 9449 §7.2); `allowed` (default): Bearer too. */
  dpop?: 'allowed' | 'required';
  logger?: boolean;
}

export interface RunningResourceServer {
  app: FastifyInstance;
  /** Where the server listens: `http://<host>:<port>`. */
  url: string;
  /** The resource identifier (required `aud`). */
  resource: string;
  close(): Promise<void>;
}

/** Starts the resource server and resolves once it listens. */
export async function startResourceServer(options: ResourceServerOptions): Promise<RunningResourceServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  const requiredScope = options.requiredScope ?? 'read';
  // Known only after listen when the port is picked by the system.
  const known: { guard?: ProtectedResource } = {};
  const protectedResource = () => known.guard!;

  const app = Fastify({ logger: options.logger ?? false });
  // Browser-based clients (MCP Inspector) call both the metadata and the API cross-origin, and must be
  // able to read WWW-Authenticate to discover the authorization server. No cookies: credentials false.
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type', 'DPoP', 'MCP-Protocol-Version', 'Mcp-Session-Id'],
    exposedHeaders: ['WWW-Authenticate', 'Mcp-Session-Id'],
    credentials: false,
    maxAge: 600,
  });

  serveMetadata(app, protectedResource, path);
  const authenticate = requireToken(protectedResource, requiredScope === '' ? [] : [requiredScope]);
  const answer = async (request: Parameters<typeof tokenOf>[0]) => {
    const token = tokenOf(request);
    return { sub: token.sub, client_id: token.client_id, scope: token.scope, aud: token.aud };
  };
  app.get(path, { onRequest: authenticate }, answer);
  app.post(path, { onRequest: authenticate }, answer);
  app.get('/healthz', async () => ({ status: 'ok' }));

  const listening = await app.listen({ host, port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : new URL(listening).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const resource = options.resource ?? `${url}${path === '/' ? '' : path}`;
  known.guard = new ProtectedResource({
    issuer: options.issuer,
    resource,
    scopesSupported: requiredScope === '' ? [] : [requiredScope],
    dpopAlgorithms: DPOP_ALGORITHMS,
    ...(options.jwksUri ? { jwksUri: options.jwksUri } : {}),
    ...(options.algorithms ? { algorithms: options.algorithms } : {}),
    ...(options.clockToleranceSeconds !== undefined ? { clockToleranceSeconds: options.clockToleranceSeconds } : {}),
    ...(options.dpop ? { dpop: options.dpop } : {}),
  });
  return { app, url, resource, close: () => app.close() };
}
