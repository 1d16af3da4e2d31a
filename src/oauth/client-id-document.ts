import type { IncomingHttpHeaders } from 'node:http';
import { DomainError } from '../lib/errors.js';
import {
  ClientMetadataError,
  type ClientMetadata,
  type ClientMetadataPolicy,
  validateClientMetadata,
} from './client-metadata.js';
import { clientMetadataFromRegistration, inRegistrationTerms } from './registration-messages.js';

/**
 * Client-id documents: OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02),
 * where a client_id that is an https URL names a JSON document, published by the client, holding its
 * RFC 7591 client metadata. Section numbers below are that draft's.
 */

/** Where every client identifier URL starts; other ids never take the fetch path. */
export const CLIENT_ID_URL_PREFIX = 'https://';

/** A client-id document, or a client identifier URL, that cannot be used; the message is safe to show and to log. */
export class ClientIdDocumentError extends DomainError {
  constructor(reason: string) {
    super('invalid_input', reason);
  }
}

// A path segment that is "." or "..", also percent-encoded (RFC 3986 §3.3, §2.3).
const DOT_SEGMENT = /^(\.|%2e){1,2}$/i;

/** Why a client_id is not a valid Client Identifier URL (§3), or null when it is one. */
export function clientIdUrlProblem(clientId: string): string | null {
  if (!clientId.startsWith(CLIENT_ID_URL_PREFIX))
    return 'a client identifier URL must use the https scheme (draft section 3)';
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return 'the client identifier is not a valid URL';
  }
  if (url.username !== '' || url.password !== '')
    return 'a client identifier URL must not contain a user name or password (draft section 3)';
  if (clientId.includes('#')) return 'a client identifier URL must not contain a fragment (draft section 3)';
  const afterAuthority = clientId.slice(CLIENT_ID_URL_PREFIX.length).replace(/^[^/?]*/, '');
  const path = afterAuthority.replace(/\?.*$/, '');
  if (path === '' || path === '/')
    return 'a client identifier URL must contain a path, such as https://app.example.com/client.json (draft section 3)';
  if (path.split('/').some((segment) => DOT_SEGMENT.test(segment)))
    return 'a client identifier URL must not contain "." or ".." path segments (draft section 3)';
  // §4: the document's client_id must equal both the identifier and the URL fetched, so an identifier
  // the URL parser would rewrite (upper-case host, default port, unencoded characters) can never match.
  if (url.href !== clientId)
    return `a client identifier URL must be in normalised form (${url.href}), since the document is fetched from that URL (draft section 4)`;
  return null;
}

/**
 * Validates a fetched client-id document for `clientId` and maps it onto client metadata, reusing the
 * registration request mapping (RFC 7591 names: client_name, scope…). Throws ClientIdDocumentError.
 */
export function clientMetadataFromDocument(
  clientId: string,
  body: string,
  policy: ClientMetadataPolicy,
): ClientMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new ClientIdDocumentError('the document is not valid JSON (RFC 8259)');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new ClientIdDocumentError('the document is not a JSON object (draft section 4)');
  const fields = doc as Record<string, unknown>;
  // §4: simple string comparison (RFC 3986 §6.2.1) with the URL it was fetched from.
  if (fields.client_id === undefined)
    throw new ClientIdDocumentError('the document has no client_id (draft section 4)');
  if (fields.client_id !== clientId)
    throw new ClientIdDocumentError(
      'the client_id in the document does not equal the URL it was fetched from (draft section 4)',
    );
  // §4.1: there is no way to establish a shared secret with a metadata document.
  for (const member of ['client_secret', 'client_secret_expires_at']) {
    if (fields[member] !== undefined)
      throw new ClientIdDocumentError(`the document must not contain ${member} (draft section 4.1)`);
  }
  // §4.1: only public keys; a private JWK member (RFC 7518 §6.2.2, §6.3.2, §6.4) means key material leaked.
  const keys = (fields.jwks as { keys?: unknown } | null | undefined)?.keys;
  if (
    Array.isArray(keys) &&
    keys.some(
      (key) => key !== null && typeof key === 'object' && ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((m) => m in key),
    )
  ) {
    throw new ClientIdDocumentError(
      'the document must not contain private or symmetric key material in jwks (draft section 4.1)',
    );
  }
  const method = fields.token_endpoint_auth_method;
  if (method !== undefined && method !== 'none' && method !== 'private_key_jwt') {
    if (typeof method === 'string' && /^client_secret_/.test(method)) {
      throw new ClientIdDocumentError(
        `token_endpoint_auth_method ${method} uses a shared secret, which a metadata document cannot have (draft section 4.1)`,
      );
    }
    throw new ClientIdDocumentError(
      'token_endpoint_auth_method must be "none" or "private_key_jwt" (with jwks_uri or jwks) for a metadata document',
    );
  }
  if (fields.redirect_uris === undefined || fields.redirect_uris === null)
    throw new ClientIdDocumentError('the document has no redirect_uris (draft section 4.2)');

  let mapped: ReturnType<typeof clientMetadataFromRegistration>;
  try {
    mapped = clientMetadataFromRegistration(
      {
        ...fields,
        // The identity is the URL's host (§8.5), so it names a client that gives no client_name.
        client_name: fields.client_name ?? new URL(clientId).host,
        // RFC 7591 would default to client_secret_basic; a document's client has no shared secret (§4.1):
        // it is public, or proves itself with a key it publishes (private_key_jwt).
        token_endpoint_auth_method: method ?? 'none',
      },
      policy.nativeSchemes,
    );
  } catch (err) {
    if (err instanceof ClientMetadataError) throw new ClientIdDocumentError(err.message);
    throw err;
  }
  try {
    return validateClientMetadata(mapped.metadata, policy);
  } catch (err) {
    if (err instanceof ClientMetadataError)
      throw new ClientIdDocumentError(inRegistrationTerms(err, mapped.scopes).message);
    throw err;
  }
}

/** Bounds of the cache lifetime of a valid document, in seconds (CIMD_CACHE_*). */
export interface CacheBounds {
  min: number;
  max: number;
  default: number;
}

/**
 * How long a valid document may be cached, in seconds, from its HTTP cache headers (RFC 9111 §5.2.2
 * max-age, no-store, no-cache; §5.3 Expires against Date), clamped to the bounds (§5.2 lets the server
 * set its own). 0 means do not cache.
 */
export function cacheLifetime(headers: IncomingHttpHeaders, bounds: CacheBounds, now: number = Date.now()): number {
  const clamp = (seconds: number) => Math.min(bounds.max, Math.max(bounds.min, seconds));
  const directives = new Map<string, string | null>();
  for (const part of String(headers['cache-control'] ?? '').split(',')) {
    const [name, value] = part.split('=', 2).map((s) => s.trim());
    if (name) directives.set(name.toLowerCase(), value === undefined ? null : value.replace(/^"|"$/g, ''));
  }
  if (directives.has('no-store') || directives.has('no-cache')) return 0;
  const maxAge = directives.get('max-age');
  if (maxAge !== undefined && maxAge !== null && /^\d+$/.test(maxAge)) return clamp(Number(maxAge));
  const expires = headers.expires === undefined ? NaN : Date.parse(headers.expires);
  if (headers.expires !== undefined) {
    // RFC 9111 §5.3: an invalid Expires (such as "0") means already expired.
    if (Number.isNaN(expires)) return clamp(0);
    const date = headers.date === undefined ? NaN : Date.parse(headers.date);
    const origin = Number.isNaN(date) ? now : date;
    return clamp(Math.floor((expires - origin) / 1000));
  }
  return bounds.default;
}
