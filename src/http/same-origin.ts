import type { FastifyRequest } from 'fastify';
import { OAuthError } from '../oauth/errors.js';

/**
 * Refuses a state-changing form POST that the browser says came from another origin, before anything is
 * read or written (defence in depth beside the form's CSRF token and the SameSite=Lax session cookie):
 * - `Sec-Fetch-Site` (Fetch Metadata), sent by current browsers, must be `same-origin`: the only form that
 *   posts here is Gatehouse's own page, so `same-site` (a sibling subdomain) and `cross-site` are refused;
 * - otherwise an `Origin` header must be the issuer's origin. `Origin: null` decides nothing: the Fetch
 *   standard makes a same-origin form POST send `null` from a page whose referrer policy is `no-referrer`,
 *   as every Gatehouse page's is; the CSRF token then decides alone.
 */
export function requireSameOrigin(request: FastifyRequest, issuerOrigin: string): void {
  const site = request.headers['sec-fetch-site'];
  const origin = request.headers.origin;
  const refused =
    site !== undefined ? site !== 'same-origin' : origin !== undefined && origin !== 'null' && origin !== issuerOrigin;
  if (refused)
    throw new OAuthError('invalid_request', 'this form may only be sent from its own page on this server', {
      status: 403,
    });
}
