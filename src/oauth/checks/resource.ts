import { canonicalUrl } from '../../config.js';
import { OAuthError } from '../errors.js';

/** The resource servers tokens may be issued for (RFC 8707), canonicalised. */
export interface ResourcePolicy {
  configured: readonly string[];
  /** Used when a request names no resource; null when none is configured. */
  fallback: string | null;
}

/** Builds the policy from RESOURCES and DEFAULT_RESOURCE (already canonical). */
export function resourcePolicy(configured: readonly string[], defaultResource: readonly string[]): ResourcePolicy {
  return { configured, fallback: defaultResource[0] ?? configured[0] ?? null };
}

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
