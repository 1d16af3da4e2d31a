import { isLoopbackUrl } from '../../lib/loopback.js';
import { OAuthError } from '../errors.js';

/**
 * RFC 8252 §7.3: a native client's loopback redirect matches a registered one with any port
 * (the app picks a free port at run time); scheme, host, path and query must still be equal.
 */
function loopbackMatches(registered: string, requested: string): boolean {
  const a = new URL(registered);
  const b = new URL(requested);
  return (
    a.protocol === 'http:' &&
    b.protocol === 'http:' &&
    a.hostname === b.hostname &&
    a.pathname === b.pathname &&
    a.search === b.search &&
    !b.hash &&
    !b.username &&
    !b.password
  );
}

/**
 * The redirect URI to use for a request: exactly one of the client's registered URIs (simple string
 * comparison, RFC 9700 §4.1.3 / OAuth 2.1 §2.3.1), the loopback exception for native clients, or the
 * only registered one when none is named. Errors here are never redirected (RFC 6749 §4.1.2.1).
 */
export function resolveRedirectUri(
  client: { redirect_uris: readonly string[]; application_type: string },
  requested: string | undefined,
): string {
  if (requested === undefined) {
    if (client.redirect_uris.length === 1) return client.redirect_uris[0]!;
    throw new OAuthError('invalid_request', 'redirect_uri is required: this client has several registered');
  }
  if (client.redirect_uris.includes(requested)) return requested;
  if (client.application_type === 'native' && isLoopbackUrl(requested)) {
    try {
      if (client.redirect_uris.some((r) => isLoopbackUrl(r) && loopbackMatches(r, requested))) return requested;
    } catch {
      // an unparsable URI matches nothing
    }
  }
  throw new OAuthError('invalid_request', 'redirect_uri does not match any URI registered for this client');
}
