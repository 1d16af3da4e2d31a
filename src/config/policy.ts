import { OPENID_SCOPE, STANDARD_IDENTITY_SCOPES } from '../lib/oidc-claims.js';
import {
  type ClaimScope,
  parseClaimsCatalogue,
  parseResourceList,
  parseResourceNames,
  parseSchemeList,
  parseScopeCatalogue,
} from './formats.js';

export type { ClaimScope };
import type { Settings } from './schema.js';

/** What scope decisions need to know about the server's catalogue (SCOPES, ENFORCE_SCOPES). */
export interface ScopePolicy {
  /** Scope name to consent-page description. */
  catalogue: ReadonlyMap<string, string>;
  /** ENFORCE_SCOPES: only catalogue scopes the client is allowed. */
  enforce: boolean;
  /**
   * Identity scopes (OpenID Connect): `openid`, the standard profile/email/address/phone and the
   * operator's CLAIMS, each with the claims it releases. Always allowed to any client, whatever SCOPES and
   * ENFORCE_SCOPES say: the consent page names the personal data each one shows.
   */
  identity: ReadonlyMap<string, ClaimScope>;
}

/** The resource servers tokens may be issued for (RFC 8707), canonicalised (RESOURCES, DEFAULT_RESOURCE). */
export interface ResourcePolicy {
  configured: readonly string[];
  /** Used when a request names no resource; null when none is configured. */
  fallback: string | null;
}

/** The settings that are lists or maps, parsed once at start into the values the protocol code uses. */
export interface Policy {
  scopes: ScopePolicy;
  resources: ResourcePolicy;
  /** RESOURCE_NAMES: display names of resources for the consent page, by canonical resource URI. */
  resourceNames: ReadonlyMap<string, string>;
  /** NATIVE_REDIRECT_SCHEMES: single-label private-use schemes native clients may use too (RFC 8252 §7.1). */
  nativeSchemes: ReadonlySet<string>;
}

/** The identity scopes: openid, the standard ones (OIDC Core §5.4), then the operator's CLAIMS. */
function identityScopes(claims: string): ReadonlyMap<string, ClaimScope> {
  return new Map<string, ClaimScope>([
    [OPENID_SCOPE, { description: 'who you are (your account identifier)', claims: [] }],
    ...STANDARD_IDENTITY_SCOPES,
    ...parseClaimsCatalogue(claims),
  ]);
}

/** Parses the policy settings of validated settings (their formats have already accepted them). */
export function readPolicy(settings: Pick<Settings, 'scopes' | 'resources' | 'clients'>): Policy {
  const configured = parseResourceList(settings.resources.list);
  return {
    scopes: {
      catalogue: parseScopeCatalogue(settings.scopes.catalogue),
      enforce: settings.scopes.enforce,
      identity: identityScopes(settings.scopes.claims),
    },
    resources: {
      configured,
      fallback: parseResourceList(settings.resources.defaultResource)[0] ?? configured[0] ?? null,
    },
    resourceNames: parseResourceNames(settings.resources.names),
    nativeSchemes: new Set(parseSchemeList(settings.clients.nativeRedirectSchemes)),
  };
}

/** Whether the issuer is served over https (decides Secure/`__Host-` cookies and HSTS). */
export function issuerIsHttps(config: Pick<Settings, 'issuer'>): boolean {
  return config.issuer.startsWith('https:');
}
