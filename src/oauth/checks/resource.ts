import type { ResourcePolicy } from '../../config/index.js';
import { canonicalUrl } from '../../lib/syntax.js';
import { OAuthError } from '../errors.js';

// Built once at start by loadConfig (config.policy.resources).
export type { ResourcePolicy };

/** Canonical form of one `resource` value, or invalid_target when it is not an absolute URI without fragment (RFC 8707 §2). */
export function canonicalResource(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OAuthError('invalid_target', 'resource must be an absolute URI (RFC 8707 §2)');
  }
  if (value.includes('#') || url.hash)
    throw new OAuthError('invalid_target', 'resource must not contain a fragment (RFC 8707 §2)');
  return canonicalUrl(value);
}

/**
 * Resolves the `resource` parameters (RFC 8707 §2): each configured and allowed for the client (a client
 * with no list may use every configured resource). None requested means the default resource.
 */
export function resolveResources(
  requested: readonly string[],
  client: { resources: readonly string[] },
  policy: ResourcePolicy,
): string[] {
  const wanted =
    requested.length > 0 ? [...new Set(requested.map(canonicalResource))] : policy.fallback ? [policy.fallback] : [];
  if (wanted.length === 0)
    throw new OAuthError('invalid_target', 'no resource was requested and no default resource is configured');
  const clientAllowed = client.resources.length > 0 ? new Set(client.resources) : null;
  for (const resource of wanted) {
    if (!policy.configured.includes(resource)) throw new OAuthError('invalid_target', `unknown resource: ${resource}`);
    if (clientAllowed && !clientAllowed.has(resource))
      throw new OAuthError('invalid_target', `resource not allowed for this client: ${resource}`);
  }
  return wanted;
}
