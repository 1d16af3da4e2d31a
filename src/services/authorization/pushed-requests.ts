import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import type { Database } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import type { ResourcePolicy } from '../../oauth/checks/resource.js';
import type { ScopePolicy } from '../../oauth/checks/scope.js';
import type { Client } from '../../oauth/client.js';
import { OAuthError } from '../../oauth/errors.js';
import { generateToken, hashSecret } from '../../oauth/secrets.js';
import {
  consumePushedAuthorizationRequest,
  createPushedAuthorizationRequest,
} from '../../repositories/pushed-authorization-request.repository.js';
import { type AuthorizeParams, clientAndRedirect, single, validateRest } from './parameters.js';

/** RFC 9126 §2.2: the request_uri is a URN under this prefix, its random part chosen by the server. */
export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';

/** The RFC 9126 §2.2 answer of the pushed authorization request endpoint. */
export interface PushedRequest {
  request_uri: string;
  expires_in: number;
}

/** Parameters of client authentication: they authenticate the push, they are not part of the request. */
const CLIENT_AUTHENTICATION_PARAMS = ['client_secret', 'client_assertion', 'client_assertion_type'];

/** What pushing and using pushed requests needs. */
export interface PushedRequestDeps {
  db: Kysely<Database>;
  config: Readonly<Pick<Config, 'par'>>;
  scopePolicy: ScopePolicy;
  resourcePolicy: ResourcePolicy;
  clock: Clock;
}

/** A validation error of a pushed request: answered as JSON (RFC 9126 §2.3), never redirected. */
function direct(err: unknown): never {
  if (err instanceof OAuthError && err.redirectable)
    throw new OAuthError(err.error, err.description, { status: err.status });
  throw err;
}

/**
 * RFC 9126 §2.1: validates a pushed authorization request of the authenticated `client` as /authorize
 * would (the same checks, parameters.ts), then stores it for PAR_REQUEST_URI_TTL_SECONDS under the hash
 * of a fresh request_uri.
 */
export async function pushAuthorizationRequest(
  deps: PushedRequestDeps,
  params: AuthorizeParams,
  client: Client,
): Promise<PushedRequest> {
  // RFC 9126 §2.1: request_uri must not be pushed.
  if (params.request_uri !== undefined)
    throw new OAuthError(
      'invalid_request',
      'request_uri must not be sent to the pushed authorization request endpoint (RFC 9126 section 2.1)',
    );
  // RFC 9126 §3 would take a JAR request object here; this server does not support them (RFC 9101 §6.2).
  if (params.request !== undefined)
    throw new OAuthError(
      'request_not_supported',
      'request objects (RFC 9101) are not supported; push the parameters themselves',
    );
  const pushed: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(params))
    if (!CLIENT_AUTHENTICATION_PARAMS.includes(name)) pushed[name] = value;
  // Client authentication already tied any client_id sent to the client that authenticated (RFC 9126 §2.1).
  pushed.client_id = client.client_id;
  try {
    await clientAndRedirect(async () => ({ client }), pushed);
    single(pushed, 'state');
    validateRest(pushed, client, deps.scopePolicy, deps.resourcePolicy);
  } catch (err) {
    direct(err);
  }
  const token = generateToken();
  const now = deps.clock();
  const ttl = deps.config.par.requestUriTtl;
  await createPushedAuthorizationRequest(deps.db, {
    request_uri_hash: hashSecret(token),
    client_id: client.client_id,
    params: JSON.stringify(pushed),
    created_at: now,
    expires_at: new Date(now.getTime() + ttl * 1000),
    consumed_at: null,
  });
  return { request_uri: `${REQUEST_URI_PREFIX}${token}`, expires_in: ttl };
}

/**
 * /authorize with request_uri (RFC 9126 §4): the pushed parameters, used once and only by the client that
 * pushed them (the request's client_id must be that client's). Any other parameter sent to /authorize is
 * ignored: only the pushed ones count. Refused (on Gatehouse's page: no redirect URI is trusted yet) with
 * invalid_request_uri when unknown, expired, used or another client's.
 */
export async function usePushedRequest(
  deps: PushedRequestDeps,
  params: AuthorizeParams,
  requestUri: string,
): Promise<AuthorizeParams> {
  const clientId = single(params, 'client_id');
  if (clientId === undefined)
    throw new OAuthError('invalid_request', 'client_id is required with request_uri (RFC 9126 section 4)');
  const token = requestUri.startsWith(REQUEST_URI_PREFIX) ? requestUri.slice(REQUEST_URI_PREFIX.length) : '';
  const row =
    token === ''
      ? undefined
      : await consumePushedAuthorizationRequest(deps.db, hashSecret(token), clientId, deps.clock());
  if (!row)
    throw new OAuthError(
      'invalid_request_uri',
      'the request_uri is unknown, has expired, was already used, or was pushed by another client; push the request again (RFC 9126 section 4)',
    );
  return row.params;
}
