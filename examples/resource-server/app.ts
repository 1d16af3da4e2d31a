import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { type JWTPayload, type JWTVerifyGetKey, createRemoteJWKSet, errors, jwtVerify } from 'jose';

/**
 * A resource server (an API, an MCP server) that verifies Gatehouse's JWT access tokens OFFLINE: one JWKS
 * fetch (cached, refetched on an unknown `kid`), then every request is checked locally, with no call to
 * Gatehouse. Answers 401/403 with the WWW-Authenticate challenges of RFC 6750 §3 and RFC 9728 §5.1, and
 * serves its RFC 9728 Protected Resource Metadata so clients (MCP clients) can find the authorization server.
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

/** What a valid token tells the API. */
export interface AccessToken {
  sub: string;
  client_id: string;
  scope: string;
  aud: string | string[];
  payload: JWTPayload;
}

export const PRM_PATH = '/.well-known/oauth-protected-resource';
const DEFAULT_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'];

/** Why a request is refused, and how (RFC 6750 §3.1). */
class BearerError extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    readonly error: 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable' | null,
    readonly description: string,
  ) {
    super(description);
  }
}

/** RFC 9728 §3.1: the metadata URL of a resource inserts the well-known path before the resource's path. */
export function metadataUrlFor(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}${PRM_PATH}${path}`;
}

/** RFC 6750 §2.1: `Authorization: Bearer <token68>`; the scheme is case-insensitive. Null when absent. */
function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer +(\S*) *$/i.exec(header);
  if (!match) return null; // another scheme: as if no token was sent
  return match[1] ?? '';
}

/**
 * The issuer's keys could not be had: Gatehouse (or the load balancer in front of it) did not answer, answered
 * non-200, or answered something that is not a usable JWK Set. Not the token's fault.
 */
class KeysUnavailable extends Error {}

/**
 * Wraps the remote key set so a failure to FETCH the keys is told apart from a token naming a key the
 * issuer does not have. jose reports a non-200 answer and unparseable JSON as a bare JOSEError, the same
 * class every token error extends, so classifying by class alone would call a Gatehouse outage an invalid
 * token (and every client would throw its tokens away).
 */
export function markFetchFailures(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (protectedHeader, token) => {
    try {
      return await keys(protectedHeader, token);
    } catch (err) {
      // The JWKS was fetched, and no key (or no single key) in it fits the token's kid and alg.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      // Anything else from the key source: refused connection, JWKSTimeout, non-200, bad JSON, JWKSInvalid.
      throw new KeysUnavailable('the signing keys could not be fetched', { cause: err });
    }
  };
}

/** jose's errors, as descriptions a client developer can act on (never internals). */
function describe(err: unknown): BearerError {
  // RFC 6750 §3.1 invalid_token tells the client to discard its token: only when the token is at fault.
  // The keys could not be fetched, or something unforeseen failed: 503, and the client keeps its token.
  if (err instanceof KeysUnavailable || !(err instanceof errors.JOSEError)) {
    return new BearerError(
      503,
      'temporarily_unavailable',
      'the signing keys of the authorization server could not be fetched; try again',
    );
  }
  const invalid = (description: string) => new BearerError(401, 'invalid_token', description);
  if (err instanceof errors.JWTExpired) return invalid('the access token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return invalid('the access token is not for this resource (aud)');
    if (err.claim === 'iss') return invalid('the access token is not from the expected issuer (iss)');
    if (err.claim === 'typ') return invalid('the token is not an access token (typ must be at+jwt, RFC 9068)');
    return invalid(`the access token has an invalid ${err.claim} claim`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return invalid('the access token is signed with an algorithm this resource does not accept');
  if (err instanceof errors.JWKSNoMatchingKey) return invalid('no signing key of the issuer matches the access token');
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return invalid('the access token names no single signing key of the issuer (kid)');
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return invalid('the access token signature does not verify');
  return invalid('the access token is malformed');
}

/** Verifies a Gatehouse access token (RFC 9068) offline; throws BearerError. */
export async function verifyAccessToken(
  token: string,
  keys: JWTVerifyGetKey,
  expected: { issuer: string; resource: string; algorithms: string[]; clockToleranceSeconds: number },
): Promise<AccessToken> {
  if (token === '') throw new BearerError(401, 'invalid_token', 'the access token is empty');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      issuer: expected.issuer,
      audience: expected.resource, // RFC 8707: a token for another API must not work here
      typ: 'at+jwt', // RFC 9068 §4: an ID token or any other JWT from the same keys is not an access token
      algorithms: expected.algorithms,
      clockTolerance: expected.clockToleranceSeconds,
      requiredClaims: ['sub', 'exp', 'client_id'],
    }));
  } catch (err) {
    throw describe(err);
  }
  return {
    sub: String(payload.sub),
    client_id: String(payload.client_id),
    scope: typeof payload.scope === 'string' ? payload.scope : '',
    aud: payload.aud as string | string[],
    payload,
  };
}

/**
 * A Bearer challenge (RFC 6750 §3) whose auth-param values are quoted-strings (RFC 9110 §5.6.4): `"` and `\`
 * are escaped as quoted-pairs; a control character (or anything past Latin-1, which no header carries)
 * cannot be quoted at all, so such a value is refused.
 */
export function challenge(params: Array<[string, string]>): string {
  const quoted = (value: string) => {
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value))
      throw new TypeError('a WWW-Authenticate parameter cannot carry control characters or non-Latin-1 text');
    return `"${value.replace(/["\\]/g, '\\$&')}"`;
  };
  return `Bearer ${params.map(([name, value]) => `${name}=${quoted(value)}`).join(', ')}`;
}

/** RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E; anything else becomes `?`. */
function headerDescription(description: string): string {
  return description.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

/** Starts the resource server and resolves once it listens. */
export async function startResourceServer(options: ResourceServerOptions): Promise<RunningResourceServer> {
  const issuer = options.issuer;
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  const requiredScope = options.requiredScope ?? 'read';
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  const clockToleranceSeconds = options.clockToleranceSeconds ?? 30;
  // Cached (up to 10 minutes) and refetched when a token names an unknown kid (at most every 30 s): a
  // key rotation is picked up without a restart, and a flood of bogus kids cannot hammer Gatehouse.
  const keys = markFetchFailures(
    createRemoteJWKSet(new URL(options.jwksUri ?? `${issuer.replace(/\/$/, '')}/.well-known/jwks.json`), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      cacheMaxAge: 600_000,
    }),
  );

  // The verified token of each request (kept here rather than decorating FastifyRequest globally).
  const verified = new WeakMap<FastifyRequest, AccessToken>();
  // Known only after listen when the port is picked by the system.
  let resource = options.resource ?? '';
  let metadataUrl = '';

  const app = Fastify({ logger: options.logger ?? false });
  // Browser-based clients (MCP Inspector) call both the metadata and the API cross-origin, and must be
  // able to read WWW-Authenticate to discover the authorization server. No cookies: credentials false.
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type', 'MCP-Protocol-Version', 'Mcp-Session-Id'],
    exposedHeaders: ['WWW-Authenticate', 'Mcp-Session-Id'],
    credentials: false,
    maxAge: 600,
  });

  function refuse(reply: FastifyReply, err: BearerError): FastifyReply {
    if (err.status === 503) {
      return reply
        .code(503)
        .header('retry-after', '5')
        .header('cache-control', 'no-store')
        .send({ error: err.error, error_description: err.description });
    }
    const params: Array<[string, string]> = [];
    if (err.error) params.push(['error', err.error]);
    if (err.status === 401 && err.error) params.push(['error_description', headerDescription(err.description)]);
    if (err.status === 403) params.push(['scope', requiredScope]);
    // RFC 9728 §5.1: where the client finds which authorization server to use.
    params.push(['resource_metadata', metadataUrl]);
    return reply
      .code(err.status)
      .header('www-authenticate', challenge(params))
      .header('cache-control', 'no-store')
      .send(
        err.error
          ? { error: err.error, error_description: err.description }
          : { error: 'unauthorized', error_description: 'an access token is required' },
      );
  }

  /** Runs before the body is read: an unauthenticated request costs no parsing. */
  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = bearerToken(request);
    if (token === null) return void refuse(reply, new BearerError(401, null, 'an access token is required'));
    try {
      const accessToken = await verifyAccessToken(token, keys, { issuer, resource, algorithms, clockToleranceSeconds });
      // RFC 6750 §3.1: a valid token without the scope is 403 insufficient_scope, not 401.
      if (requiredScope !== '' && !accessToken.scope.split(' ').includes(requiredScope)) {
        throw new BearerError(403, 'insufficient_scope', `the access token lacks the ${requiredScope} scope`);
      }
      verified.set(request, accessToken);
    } catch (err) {
      if (!(err instanceof BearerError)) throw err;
      if (err.status === 503) request.log.warn({ err }, 'JWKS unavailable');
      return void refuse(reply, err);
    }
  }

  const metadata = () => ({
    resource,
    authorization_servers: [issuer],
    scopes_supported: requiredScope === '' ? [] : [requiredScope],
    bearer_methods_supported: ['header'],
  });
  const serveMetadata = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.header('cache-control', 'public, max-age=300').send(metadata());
  app.get(PRM_PATH, serveMetadata);
  // RFC 9728 §3.1: the path-inserted form, which is what the resource_metadata URL names.
  if (path !== '/') app.get(`${PRM_PATH}${path}`, serveMetadata);

  const answer = async (request: FastifyRequest) => {
    const token = verified.get(request)!;
    return { sub: token.sub, client_id: token.client_id, scope: token.scope, aud: token.aud };
  };
  app.get(path, { onRequest: authenticate }, answer);
  app.post(path, { onRequest: authenticate }, answer);
  app.get('/healthz', async () => ({ status: 'ok' }));

  const listening = await app.listen({ host, port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : new URL(listening).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (resource === '') resource = `${url}${path === '/' ? '' : path}`;
  metadataUrl = metadataUrlFor(resource);
  return { app, url, resource, close: () => app.close() };
}
