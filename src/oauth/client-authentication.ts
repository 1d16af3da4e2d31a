import { DomainError } from '../lib/errors.js';
import { assertionClientId, JWT_BEARER_ASSERTION_TYPE } from './client-assertion.js';
import type { Client } from './client.js';
import type { ClientAuthMethod } from './client-metadata.js';
import { OAuthError } from './errors.js';
import { verifySecret } from './secrets.js';

/** A client that proved who it is, and how. */
export interface AuthenticatedClient {
  client: Client;
  method: ClientAuthMethod;
}

/** What authentication reads from a token-endpoint request. */
export interface ClientCredentialsRequest {
  authorization: string | undefined;
  /** The parsed form body: a repeated parameter arrives as an array. */
  body: Record<string, unknown>;
}

/**
 * Where client authentication reads clients: the cached client registry on the hot path. Its `get` must
 * never fetch a client-id document, so a client_id URL sent to the (unthrottled) token or revocation
 * endpoint costs at most one query: such a client exists only once /authorize stored it.
 */
export interface ClientLookup {
  /** The client with this id (disabled ones too), or undefined. */
  get(clientId: string): Promise<Client | undefined>;
}

/** Where a successful authentication is noted (a client's last use). */
export interface ClientUseRecorder {
  /** Notes that the client was used; must not delay the request. */
  markUsed(clientId: string): void;
}

/**
 * Brute-force protection around one request's authentication (RFC 6749 §2.3.1): consulted with the
 * presented client_id before anything about the client is looked up or checked, and told the outcome.
 */
export interface ClientAuthenticationGuard {
  /** Throws (a 429 OAuthError) when this client_id may not be tried now. */
  admit(clientId: string): void;
  /** Notes a failed authentication of this client_id. */
  failed(clientId: string): void;
  /** Notes a successful one. */
  succeeded(clientId: string): void;
}

/** Why an authentication failed, as a class (for the audit trail; the caller is told only invalid_client). */
export type ClientAuthenticationFailure =
  'unknown_client' | 'disabled_client' | 'method_mismatch' | 'wrong_secret' | 'invalid_assertion';

/** Where failed authentications are reported (the audit trail): the client_id, method and reason class only. */
export interface ClientAuthenticationFailures {
  failed(clientId: string, method: ClientAuthMethod, reason: ClientAuthenticationFailure): void;
}

/** Checks a private_key_jwt client assertion (signature, claims, replay) against a client's keys. */
export interface ClientAssertionVerifier {
  /** Resolves when `assertion` authenticates `client`; throws otherwise (a DomainError 'unavailable' is an outage). */
  verify(assertion: string, client: Client): Promise<void>;
}

/** What client authentication reads clients from, and where it notes their use. */
export interface ClientAuthenticationSources {
  registry: ClientLookup;
  usage: ClientUseRecorder;
  /** Brute-force protection; none when the throttle is off. */
  guard?: ClientAuthenticationGuard | undefined;
  /** private_key_jwt (RFC 7523 §2.2); without it such clients cannot authenticate. */
  assertions?: ClientAssertionVerifier;
  /** Told of each failure of a known method against a client_id (never the secret or assertion). */
  failures?: ClientAuthenticationFailures | undefined;
}

/** RFC 6749 §5.2: a 401 after an Authorization header attempt must say which scheme to use. */
const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="gatehouse"' };
// One description for unknown client, disabled client and wrong secret, so ids cannot be probed.
const FAILED = 'client authentication failed';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Credentials {
  method: ClientAuthMethod;
  clientId: string;
  secret: string | null;
  /** The client assertion of private_key_jwt; null for the other methods. */
  assertion?: string;
}

function invalidClient(description: string, basic: boolean, detail?: string): OAuthError {
  return new OAuthError('invalid_client', description, {
    ...(basic ? { headers: BASIC_CHALLENGE } : {}),
    ...(detail === undefined ? {} : { detail }),
  });
}

/** One body parameter: a single string, or undefined when absent or empty (RFC 6749 §3.1). */
function bodyParam(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined || value === null || value === '') return undefined;
  // RFC 6749 §3.2: request parameters must not be included more than once.
  if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.2)`);
  if (typeof value !== 'string') throw new OAuthError('invalid_request', `parameter ${name} must be a string`);
  return value;
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded (Appendix B) before being joined and base64-encoded. */
function formDecode(value: string): string {
  // Generated ids and secrets are base64url: nothing to decode (the common case, on every request).
  if (value.indexOf('%') === -1 && value.indexOf('+') === -1) return value;
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/** RFC 7617 credentials of an `Authorization: Basic` header; any malformation is invalid_client. */
function parseBasic(header: string): { clientId: string; secret: string } {
  const match = /^basic +(\S+) *$/i.exec(header);
  if (!match) {
    const scheme = header.trim().split(' ')[0] ?? '';
    throw invalidClient(
      /^basic$/i.test(scheme)
        ? 'malformed Basic credentials'
        : 'the token endpoint accepts only the Basic authentication scheme',
      true,
    );
  }
  const token = match[1]!;
  if (!BASE64.test(token) || token.length % 4 === 1)
    throw invalidClient('malformed Basic credentials: not base64', true);
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    throw invalidClient('malformed Basic credentials: not UTF-8', true);
  }
  const colon = decoded.indexOf(':');
  if (colon === -1) throw invalidClient('malformed Basic credentials: no colon between client_id and secret', true);
  let clientId: string;
  let secret: string;
  try {
    clientId = formDecode(decoded.slice(0, colon));
    secret = formDecode(decoded.slice(colon + 1));
  } catch {
    throw invalidClient('malformed Basic credentials: bad percent-encoding (RFC 6749 §2.3.1)', true);
  }
  if (clientId === '') throw invalidClient('malformed Basic credentials: empty client_id', true);
  return { clientId, secret };
}

/**
 * RFC 7521 §4.2 / RFC 7523 §2.2: a JWT client assertion names its client in iss and sub; client_id, if
 * sent too, must name the same client.
 */
function assertionCredentials(req: ClientCredentialsRequest, bodyId: string | undefined): Credentials {
  const type = bodyParam(req.body, 'client_assertion_type');
  const assertion = bodyParam(req.body, 'client_assertion');
  if (type === undefined || assertion === undefined)
    throw new OAuthError('invalid_request', 'client_assertion and client_assertion_type go together (RFC 7521 §4.2)');
  if (req.authorization !== undefined || bodyParam(req.body, 'client_secret') !== undefined)
    throw new OAuthError('invalid_request', 'the client used more than one authentication method (RFC 6749 §2.3)');
  if (type !== JWT_BEARER_ASSERTION_TYPE)
    throw invalidClient(`unsupported client_assertion_type; only ${JWT_BEARER_ASSERTION_TYPE} is accepted`, false);
  const clientId = assertionClientId(assertion);
  if (clientId === undefined) throw invalidClient(FAILED, false, 'client assertion: not a JWT with iss = sub');
  if (bodyId !== undefined && bodyId !== clientId)
    throw new OAuthError('invalid_request', 'client_id does not match the client assertion (RFC 7521 §4.2)');
  return { method: 'private_key_jwt', clientId, secret: null, assertion };
}

/** Which method the request uses, from what it carries; more than one is invalid_request (RFC 6749 §2.3). */
function presentedCredentials(req: ClientCredentialsRequest): Credentials {
  const bodyId = bodyParam(req.body, 'client_id');
  if (req.body.client_assertion !== undefined || req.body.client_assertion_type !== undefined)
    return assertionCredentials(req, bodyId);
  const bodySecret = bodyParam(req.body, 'client_secret');
  if (req.authorization !== undefined) {
    if (bodySecret !== undefined) {
      throw new OAuthError('invalid_request', 'the client used more than one authentication method (RFC 6749 §2.3)');
    }
    const { clientId, secret } = parseBasic(req.authorization);
    if (bodyId !== undefined && bodyId !== clientId) {
      throw new OAuthError('invalid_request', 'client_id in the body does not match the Authorization header');
    }
    return { method: 'client_secret_basic', clientId, secret };
  }
  if (bodyId === undefined) {
    if (bodySecret !== undefined) throw new OAuthError('invalid_request', 'client_secret was sent without client_id');
    // RFC 6749 §5.2: no client authentication included.
    throw invalidClient('client authentication is required', false);
  }
  if (bodySecret !== undefined) return { method: 'client_secret_post', clientId: bodyId, secret: bodySecret };
  return { method: 'none', clientId: bodyId, secret: null };
}

/**
 * Authenticates the client of a token-endpoint request (RFC 6749 §2.3): client_secret_basic,
 * client_secret_post, private_key_jwt (RFC 7523 §2.2), or none (a public client naming itself), and only
 * the method it registered.
 */
export async function authenticateClient(
  req: ClientCredentialsRequest,
  { registry, usage, guard, assertions, failures }: ClientAuthenticationSources,
): Promise<AuthenticatedClient> {
  const presented = presentedCredentials(req);
  const basic = presented.method === 'client_secret_basic';
  // RFC 6749 §2.3.1: brute-force protection decides before the client is looked up or its secret checked,
  // so a throttled guess learns nothing, not even from timing.
  guard?.admit(presented.clientId);
  const fail = (reason: ClientAuthenticationFailure): OAuthError => {
    guard?.failed(presented.clientId);
    failures?.failed(presented.clientId, presented.method, reason);
    return invalidClient(FAILED, basic);
  };
  const client = await registry.get(presented.clientId);
  if (!client || client.disabled_at !== null) {
    // Same work as a real check, so a missing client does not answer faster than a wrong secret.
    if (presented.secret !== null) verifySecret(presented.secret, null);
    throw fail(client ? 'disabled_client' : 'unknown_client');
  }
  if (client.token_endpoint_auth_method !== presented.method) {
    // Same answer as an unknown client: a method mismatch must not confirm that the id exists.
    if (presented.secret !== null) verifySecret(presented.secret, null);
    throw fail('method_mismatch');
  }
  if (presented.secret !== null && !verifySecret(presented.secret, client.secret_hash)) {
    throw fail('wrong_secret');
  }
  if (presented.assertion !== undefined) {
    try {
      await verifyAssertion(presented.assertion, client, assertions);
    } catch (err) {
      // A refused assertion is a failed authentication like a wrong secret; an outage is not.
      if (err instanceof OAuthError) {
        guard?.failed(presented.clientId);
        failures?.failed(presented.clientId, presented.method, 'invalid_assertion');
      }
      throw err;
    }
  }
  guard?.succeeded(presented.clientId);
  usage.markUsed(client.client_id);
  return { client, method: presented.method };
}

/** private_key_jwt: every refusal is the same invalid_client, its reason only logged (never sent). */
async function verifyAssertion(
  assertion: string,
  client: Client,
  assertions: ClientAssertionVerifier | undefined,
): Promise<void> {
  if (!assertions) throw invalidClient(FAILED, false, 'client assertion: private_key_jwt is not wired here');
  try {
    await assertions.verify(assertion, client);
  } catch (err) {
    // A database outage stays a 503: the client did nothing wrong.
    if (err instanceof DomainError && err.code === 'unavailable') throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw invalidClient(FAILED, false, `client assertion: ${reason}`);
  }
}
