import type { ScopePolicy } from '../../config/index.js';
import { SCOPE_TOKEN } from '../../lib/syntax.js';
import { OAuthError } from '../errors.js';

// Built once at start by loadConfig (config.policy.scopes).
export type { ScopePolicy };

/** The scopes a client may ask for: its own list, or the whole catalogue when it has none. */
export function allowedScopes(client: { scopes: readonly string[] }, policy: ScopePolicy): ReadonlySet<string> {
  return new Set(client.scopes.length > 0 ? client.scopes : policy.catalogue.keys());
}

/** Whether the scopes include `openid`: an OpenID Connect request (OIDC Core §3.1.2.1). */
export function isOpenIdRequest(scopes: readonly string[]): boolean {
  return scopes.includes('openid');
}

/** Whether every scope is an identity scope: the client asks only who the user is, for no API. */
export function onlyIdentityScopes(scopes: readonly string[], policy: Pick<ScopePolicy, 'identity'>): boolean {
  return isOpenIdRequest(scopes) && scopes.every((scope) => policy.identity.has(scope));
}

/**
 * Resolves the `scope` parameter (RFC 6749 §3.3): space-delimited scope-tokens, each allowed for the
 * client and (when enforced) in the catalogue. No parameter means the client's default scopes.
 */
export function resolveScopes(
  requested: string | undefined,
  client: { scopes: readonly string[]; default_scopes: readonly string[] },
  policy: ScopePolicy,
): string[] {
  if (requested === undefined) return [...client.default_scopes];
  const tokens = requested.split(' ').filter((s) => s !== '');
  if (requested !== tokens.join(' ')) {
    throw new OAuthError('invalid_scope', 'scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)');
  }
  const bad = tokens.find((s) => !SCOPE_TOKEN.test(s));
  if (bad !== undefined)
    throw new OAuthError('invalid_scope', 'scope contains a character not allowed by RFC 6749 §3.3');
  const unique = [...new Set(tokens)];
  if (!policy.enforce) return unique;
  const allowed = allowedScopes(client, policy);
  for (const scope of unique) {
    // OpenID Connect identity scopes are always supported, outside the catalogue (docs/openid-connect.md).
    if (policy.identity.has(scope)) continue;
    if (!policy.catalogue.has(scope)) throw new OAuthError('invalid_scope', `unknown scope: ${scope}`);
    if (!allowed.has(scope)) throw new OAuthError('invalid_scope', `scope not allowed for this client: ${scope}`);
  }
  return unique;
}
