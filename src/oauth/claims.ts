import type { ScopePolicy } from './checks/scope.js';

/**
 * The host's claims (its login_response `claims`) that some identity scope releases, and nothing else:
 * what Gatehouse keeps with a grant for /userinfo (OIDC Core §5.4). Anything the host sent that no scope
 * names is never stored beside the grant.
 */
export function releasableClaims(
  hostClaims: Readonly<Record<string, unknown>>,
  identity: ScopePolicy['identity'],
): Record<string, unknown> {
  const names = new Set<string>();
  for (const scope of identity.values()) for (const claim of scope.claims) names.add(claim);
  return Object.fromEntries(Object.entries(hostClaims).filter(([name]) => names.has(name)));
}

/** OIDC Core §5.3.2 / §5.4: the stored claims the granted scopes release, in the order the scopes name them. */
export function consentedClaims(
  stored: Readonly<Record<string, unknown>>,
  scopes: readonly string[],
  identity: ScopePolicy['identity'],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const scope of scopes) {
    for (const claim of identity.get(scope)?.claims ?? []) {
      if (Object.hasOwn(stored, claim) && stored[claim] !== null && stored[claim] !== undefined)
        out[claim] = stored[claim];
    }
  }
  return out;
}
