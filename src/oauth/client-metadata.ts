import type { Config } from '../config/index.js';
import { SIGNING_ALGS } from '../keys/public-jwk.js';
import type { ClientJwks } from '../db/tables/client.table.js';
import { DomainError } from '../lib/errors.js';
import { isRegistrableLoopbackHost } from '../lib/loopback.js';
import { SCOPE_TOKEN, canonicalUrl } from '../lib/syntax.js';

/** Grant types a client may register for (OAuth 2.1 drops implicit and password). */
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/** Token endpoint authentication methods (RFC 7591 §2, RFC 6749 §2.3, RFC 7523 §2.2 / OIDC Core §9 private_key_jwt). */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export type ClientAuthMethod = (typeof AUTH_METHODS)[number];

/**
 * JWS algorithms a client assertion may be signed with: asymmetric only, so the server never holds a
 * key that could sign for the client (no HS*, and never `none`).
 */
export const ASSERTION_ALGS = ['ES256', 'PS256', 'RS256', 'EdDSA', 'Ed25519'] as const;
export type AssertionAlg = (typeof ASSERTION_ALGS)[number];

/**
 * FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA with Ed25519 (`Ed25519` is its fully-specified
 * name, RFC 9864, which current clients such as oauth4webapi send); RS256 is not allowed.
 */
export const FAPI2_ASSERTION_ALGS: readonly AssertionAlg[] = ['ES256', 'PS256', 'EdDSA', 'Ed25519'];

/** Named sets of stricter rules a client can be held to (`security_profile`). */
export const SECURITY_PROFILES = ['fapi2'] as const;
export type SecurityProfile = (typeof SECURITY_PROFILES)[number];

/** RFC 7591 / OIDC application types: `native` unlocks loopback and private-use redirect URIs (RFC 8252). */
export const APPLICATION_TYPES = ['web', 'native'] as const;
export type ApplicationType = (typeof APPLICATION_TYPES)[number];

/** Validated, normalised client metadata; the keys are the `clients` columns they are stored in. */
export interface ClientMetadata {
  name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: GrantType[];
  response_types: string[];
  token_endpoint_auth_method: ClientAuthMethod;
  scopes: string[];
  default_scopes: string[];
  resources: string[];
  application_type: ApplicationType;
  client_uri: string | null;
  logo_uri: string | null;
  policy_uri: string | null;
  tos_uri: string | null;
  contacts: string[];
  skip_consent: boolean;
  /** OpenID Connect Back-Channel Logout §2.2: where logout tokens are POSTed; null for none. */
  backchannel_logout_uri: string | null;
  /** Back-Channel Logout §2.2: the client needs `sid` in its logout tokens. */
  backchannel_logout_session_required: boolean;
  /** RFC 9449 §5.2: every token request of this client must carry a DPoP proof. */
  dpop_bound_access_tokens: boolean;
  /** OpenID Connect Registration 1.0 §2: the alg of its ID tokens (null: the active key's). */
  id_token_signed_response_alg: string | null;
  /** OpenID Connect Registration 1.0 §2: max_age applied when a request names none. */
  default_max_age: number | null;
  /** OpenID Connect Registration 1.0 §2 (Gatehouse always sends auth_time; kept as registered). */
  require_auth_time: boolean;
  jwks: ClientJwks | null;
  jwks_uri: string | null;
  token_endpoint_auth_signing_alg: AssertionAlg | null;
  require_pushed_authorization_requests: boolean;
  security_profile: SecurityProfile | null;
}

/** Every client metadata field, in display order. */
export const CLIENT_METADATA_FIELDS: ReadonlyArray<keyof ClientMetadata> = [
  'name',
  'redirect_uris',
  'post_logout_redirect_uris',
  'grant_types',
  'response_types',
  'token_endpoint_auth_method',
  'scopes',
  'default_scopes',
  'resources',
  'application_type',
  'client_uri',
  'logo_uri',
  'policy_uri',
  'tos_uri',
  'contacts',
  'skip_consent',
  'backchannel_logout_uri',
  'backchannel_logout_session_required',
  'dpop_bound_access_tokens',
  'id_token_signed_response_alg',
  'default_max_age',
  'require_auth_time',
  'jwks',
  'jwks_uri',
  'token_endpoint_auth_signing_alg',
  'require_pushed_authorization_requests',
  'security_profile',
];

/** RFC 6749 Appendix A.1: client_id is visible ASCII (VSCHAR, space included); capped so lookups stay cheap. */
export const CLIENT_ID_FORM = /^[\x20-\x7E]{1,255}$/;

/** What the server's configuration allows a client to ask for. */
export interface ClientMetadataPolicy {
  /** SCOPES: scope name to description. */
  catalogue: ReadonlyMap<string, string>;
  /** ENFORCE_SCOPES: client scopes must come from the catalogue. */
  enforceScopes: boolean;
  /** RESOURCES, canonical. */
  resources: readonly string[];
  /** NATIVE_REDIRECT_SCHEMES: single-label private-use schemes native clients may use too. */
  nativeSchemes: ReadonlySet<string>;
  /** Outside production: a backchannel_logout_uri may be http on a loopback host (a local test RP). */
  backchannelHttpLoopback?: boolean;
  /**
   * Outside production: a web client's redirect URIs may be http on a loopback host too (local development of
   * a web app at http://localhost:3000), matched exactly, port included. Production keeps RFC 8252 §7.3's rule:
   * http on loopback is for native apps only.
   */
  webHttpLoopback?: boolean;
  /** Identity scopes (openid, standard, CLAIMS): always allowed in a client's scopes. */
  identityScopes?: ReadonlySet<string>;
  /** The algorithms ID tokens are signed with (SIGNING_ALG); every one Gatehouse can sign with when absent. */
  idTokenAlgs?: readonly string[];
}

/** No extra schemes: only reverse-domain private-use schemes (RFC 8252 §7.1). */
export const NO_EXTRA_SCHEMES: ReadonlySet<string> = new Set();

/** The client metadata policy of a configuration (from the policy values loadConfig parsed). */
export function clientMetadataPolicy(
  config: Pick<Config, 'policy'> & Partial<Pick<Config, 'nodeEnv' | 'keys'>>,
): ClientMetadataPolicy {
  const { policy, nodeEnv } = config;
  return {
    catalogue: policy.scopes.catalogue,
    enforceScopes: policy.scopes.enforce,
    resources: policy.resources.configured,
    nativeSchemes: policy.nativeSchemes,
    backchannelHttpLoopback: nodeEnv !== undefined && nodeEnv !== 'production',
    webHttpLoopback: nodeEnv !== undefined && nodeEnv !== 'production',
    identityScopes: new Set(policy.scopes.identity.keys()),
    ...(config.keys ? { idTokenAlgs: [config.keys.signingAlg] } : {}),
  };
}

/**
 * One bad client metadata field: `field` names it exactly (`redirect_uris[1]`), `reason` says what is wrong.
 * The edge's mapping table picks the RFC 7591 §3.2.2 code from the field (redirect_uris → invalid_redirect_uri,
 * anything else invalid_client_metadata).
 */
export class ClientMetadataError extends DomainError {
  declare readonly field: string;

  constructor(
    field: string,
    readonly reason: string,
  ) {
    super('invalid_input', `${field}: ${reason}`, { field });
  }
}

const MAX_NAME = 200;
const MAX_URI = 2048;
const MAX_ITEMS = 50;
// RFC 8252 §7.1: a private-use scheme in reverse domain name form, so it contains a dot.
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;
// C0 controls and DEL: matching them is the point of this pattern.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function fail(field: string, reason: string): never {
  throw new ClientMetadataError(field, reason);
}

function readString(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string') fail(field, 'must be a string');
  if (value.trim() === '') fail(field, 'must not be empty');
  // Stored values are matched exactly later (redirect URIs), so stray whitespace would never match.
  if (value !== value.trim()) fail(field, 'must not start or end with whitespace');
  if (value.length > max) fail(field, `must be at most ${max} characters`);
  if (CONTROL_CHARS.test(value)) fail(field, 'must not contain control characters');
  return value;
}

/** An array of strings, duplicates dropped in order; undefined when absent. */
function readList(
  input: Record<string, unknown>,
  field: string,
  max = MAX_ITEMS,
  itemMax = MAX_URI,
): string[] | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) fail(field, 'must be an array of strings');
  if (value.length > max) fail(field, `must have at most ${max} entries`);
  return [...new Set(value.map((item, i) => readString(item, `${field}[${i}]`, itemMax)))];
}

function readEnum<T extends string>(
  input: Record<string, unknown>,
  field: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = input[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) fail(field, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

function readUrl(value: string, field: string): URL {
  try {
    return new URL(value);
  } catch {
    fail(field, 'must be an absolute URI');
  }
}

/**
 * A redirect URI's problem, or null when it may be registered: absolute, no fragment (RFC 6749 §3.1.2),
 * https; for native apps also http on a loopback host (RFC 8252 §7.3) or a private-use scheme (§7.1).
 */
export function redirectUriProblem(
  uri: string,
  applicationType: ApplicationType,
  nativeSchemes: ReadonlySet<string> = NO_EXTRA_SCHEMES,
  webHttpLoopback = false,
): string | null {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'must be an absolute URI (RFC 6749 §3.1.2)';
  }
  if (uri.includes('#')) return 'must not contain a fragment (RFC 6749 §3.1.2)';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.protocol === 'https:') return url.hostname ? null : 'must name a host';
  if (url.protocol === 'http:') {
    if (!isRegistrableLoopbackHost(url.hostname))
      return 'must use https; http is allowed only for loopback hosts of native clients (RFC 8252 §7.3)';
    if (applicationType === 'native' || webHttpLoopback) return null;
    return 'http on loopback is allowed only for native clients (RFC 8252 §7.3); set application_type to native (outside production, NODE_ENV other than production, web clients may use it too)';
  }
  if (PRIVATE_USE_SCHEME.test(url.protocol) || nativeSchemes.has(url.protocol.slice(0, -1))) {
    return applicationType === 'native'
      ? null
      : 'private-use URI schemes are allowed only for native clients (RFC 8252 §7.1); set application_type to native';
  }
  return 'must use https, http on a loopback host, or a reverse-domain private-use scheme such as com.example.app: (RFC 8252 §7.1); an operator can allow a single-label app scheme with NATIVE_REDIRECT_SCHEMES';
}

function readRedirectUris(
  input: Record<string, unknown>,
  field: string,
  applicationType: ApplicationType,
  nativeSchemes: ReadonlySet<string>,
  webHttpLoopback = false,
): string[] {
  const uris = readList(input, field, 20) ?? [];
  uris.forEach((uri, i) => {
    const problem = redirectUriProblem(uri, applicationType, nativeSchemes, webHttpLoopback);
    if (problem) fail(`${field}[${i}]`, problem);
  });
  return uris;
}

function readHttpsUrl(input: Record<string, unknown>, field: string): string | null {
  const value = input[field];
  if (value === undefined || value === null) return null;
  const text = readString(value, field, MAX_URI);
  const url = readUrl(text, field);
  if (url.protocol !== 'https:') fail(field, 'must be an https URL');
  if (text.includes('#')) fail(field, 'must not contain a fragment');
  return text;
}

/**
 * OpenID Connect Back-Channel Logout §2.2: an absolute URI, no fragment, https (§4.1 of the spec's
 * security considerations: the logout token travels in it); http only on a loopback host outside
 * production, for a local RP. Delivery still refuses private and loopback addresses unless the
 * operator allows them (BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES).
 */
function readBackchannelLogoutUri(input: Record<string, unknown>, policy: ClientMetadataPolicy): string | null {
  const field = 'backchannel_logout_uri';
  const value = input[field];
  if (value === undefined || value === null) return null;
  const text = readString(value, field, MAX_URI);
  const url = readUrl(text, field);
  if (text.includes('#')) fail(field, 'must not contain a fragment (Back-Channel Logout §2.2)');
  if (url.username || url.password) fail(field, 'must not contain credentials');
  if (url.protocol === 'https:') return text;
  if (url.protocol === 'http:' && isRegistrableLoopbackHost(url.hostname)) {
    if (policy.backchannelHttpLoopback) return text;
    fail(field, 'must be an https URL; http on a loopback host is allowed only outside production');
  }
  fail(field, 'must be an https URL');
}

function readGrantTypes(input: Record<string, unknown>): GrantType[] {
  // RFC 7591 §2: authorization_code when omitted.
  const grants = readList(input, 'grant_types') ?? ['authorization_code'];
  if (grants.length === 0) fail('grant_types', 'must name at least one grant type');
  grants.forEach((g, i) => {
    if (!GRANT_TYPES.includes(g as GrantType)) fail(`grant_types[${i}]`, `must be one of ${GRANT_TYPES.join(', ')}`);
  });
  return grants as GrantType[];
}

/** RFC 7591 §2.1: response_types ["code"] exactly when authorization_code is registered; derived when omitted. */
function readResponseTypes(input: Record<string, unknown>, grants: readonly GrantType[]): string[] {
  const expected = grants.includes('authorization_code') ? ['code'] : [];
  const given = readList(input, 'response_types', 5, 64);
  if (given === undefined) return expected;
  given.forEach((r, i) => {
    if (r !== 'code') fail(`response_types[${i}]`, 'only "code" is supported (OAuth 2.1 removes the implicit flow)');
  });
  if (given.length !== expected.length) {
    fail(
      'response_types',
      expected.length
        ? 'must be ["code"] when grant_types includes authorization_code'
        : 'must be empty unless grant_types includes authorization_code',
    );
  }
  return given;
}

function readScopes(input: Record<string, unknown>, field: string, policy: ClientMetadataPolicy): string[] {
  const scopes = readList(input, field, 100, 256) ?? [];
  scopes.forEach((scope, i) => {
    if (!SCOPE_TOKEN.test(scope)) fail(`${field}[${i}]`, 'is not a valid scope-token (RFC 6749 §3.3)');
    if (policy.enforceScopes && !policy.catalogue.has(scope) && !policy.identityScopes?.has(scope))
      fail(`${field}[${i}]`, `"${scope}" is not in the scope catalogue (SCOPES)`);
  });
  return scopes;
}

function readResources(input: Record<string, unknown>, policy: ClientMetadataPolicy): string[] {
  const values = readList(input, 'resources') ?? [];
  const out = values.map((value, i) => {
    const field = `resources[${i}]`;
    readUrl(value, field);
    if (value.includes('#')) fail(field, 'must not contain a fragment (RFC 8707 §2)');
    const canonical = canonicalUrl(value);
    if (!policy.resources.includes(canonical)) fail(field, `"${canonical}" is not one of the configured RESOURCES`);
    return canonical;
  });
  return [...new Set(out)];
}

// RFC 7518 §6.2.2, §6.3.2, §6.4: members that hold private or symmetric key material.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const MAX_JWKS_BYTES = 16384;
/** Members each public key type needs (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2), and the curves allowed. */
const JWK_SHAPES: Record<string, { members: string[]; curves?: string[] }> = {
  RSA: { members: ['n', 'e'] },
  EC: { members: ['crv', 'x', 'y'], curves: ['P-256', 'P-384', 'P-521'] },
  OKP: { members: ['crv', 'x'], curves: ['Ed25519'] },
};

/**
 * RFC 7591 §2 `jwks`: a JWK Set of public keys (RFC 7517 §5), by value. Private or symmetric key
 * material is refused: it would mean the client's key has leaked to whoever stored this.
 */
function readJwks(input: Record<string, unknown>): ClientJwks | null {
  const value = input.jwks;
  if (value === undefined || value === null) return null;
  return validateJwks(value, 'jwks', MAX_JWKS_BYTES);
}

/**
 * A JWK Set of asymmetric public keys (RFC 7517 §5), as registered in `jwks` or served at `jwks_uri`;
 * throws ClientMetadataError naming the bad member under `field`.
 */
export function validateJwks(value: unknown, field: string, maxBytes: number): ClientJwks {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(field, 'must be a JWK Set object {"keys": [...]} (RFC 7517 §5)');
  const keys = (value as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) fail(field, 'must have a non-empty "keys" array (RFC 7517 §5)');
  if (keys.length > 20) fail(field, 'must have at most 20 keys');
  if (JSON.stringify(value).length > maxBytes) fail(field, `must be at most ${maxBytes} bytes of JSON`);
  const kids = new Set<string>();
  const out = keys.map((key: unknown, i) => {
    const at = `${field}.keys[${i}]`;
    if (key === null || typeof key !== 'object' || Array.isArray(key)) fail(at, 'must be a JWK object');
    const jwk = key as Record<string, unknown>;
    if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk))
      fail(at, 'must be a public key: private or symmetric key material is never registered (RFC 7518 §6)');
    const shape = typeof jwk.kty === 'string' ? JWK_SHAPES[jwk.kty] : undefined;
    if (!shape) fail(`${at}.kty`, 'must be RSA, EC or OKP (an asymmetric public key)');
    for (const member of shape.members)
      if (typeof jwk[member] !== 'string' || jwk[member] === '') fail(`${at}.${member}`, 'is required');
    if (shape.curves && !shape.curves.includes(jwk.crv as string))
      fail(`${at}.crv`, `must be one of ${shape.curves.join(', ')}`);
    if (jwk.kid !== undefined) {
      if (typeof jwk.kid !== 'string' || jwk.kid === '') fail(`${at}.kid`, 'must be a non-empty string');
      if (kids.has(jwk.kid)) fail(`${at}.kid`, `"${jwk.kid}" is used by another key of the set`);
      kids.add(jwk.kid);
    }
    // An encryption key may sit in the same set; it is never used to verify an assertion.
    if (jwk.use !== undefined && jwk.use !== 'sig' && jwk.use !== 'enc') fail(`${at}.use`, 'must be "sig" or "enc"');
    return jwk;
  });
  return { keys: out };
}

function readBoolean(input: Record<string, unknown>, field: string): boolean {
  const value = input[field];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') fail(field, 'must be true or false');
  return value;
}

/** OIDC Registration 1.0 §2 id_token_signed_response_alg: only an alg Gatehouse signs with, never `none`. */
function readIdTokenAlg(input: Record<string, unknown>, policy: ClientMetadataPolicy): string | null {
  const value = input.id_token_signed_response_alg;
  if (value === undefined || value === null) return null;
  const allowed = policy.idTokenAlgs ?? SIGNING_ALGS;
  if (typeof value !== 'string' || !allowed.includes(value))
    fail(
      'id_token_signed_response_alg',
      `must be ${allowed.join(' or ')}: the algorithm this server signs ID tokens with`,
    );
  return value;
}

/** OIDC Registration 1.0 §2 default_max_age: seconds, a non-negative integer. */
function readMaxAge(input: Record<string, unknown>): number | null {
  const value = input.default_max_age;
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 999_999_999)
    fail('default_max_age', 'must be a non-negative integer number of seconds');
  return value;
}

/**
 * Validates and normalises client metadata for every way a client is made (CLI, CLIENTS_FILE, dynamic
 * registration). Throws ClientMetadataError naming the first bad field. Defaults follow RFC 7591 §2.
 */
export function validateClientMetadata(input: unknown, policy: ClientMetadataPolicy): ClientMetadata {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail('metadata', 'must be an object');
  const data = input as Record<string, unknown>;
  const known = new Set<string>(CLIENT_METADATA_FIELDS);
  for (const key of Object.keys(data)) if (!known.has(key)) fail(key, 'is not a known client metadata field');

  if (data.name === undefined || data.name === null) fail('name', 'is required');
  const name = readString(typeof data.name === 'string' ? data.name.trim() : data.name, 'name', MAX_NAME);
  const applicationType = readEnum(data, 'application_type', APPLICATION_TYPES, 'web');
  const authMethod = readEnum(data, 'token_endpoint_auth_method', AUTH_METHODS, 'client_secret_basic');
  const grantTypes = readGrantTypes(data);
  const responseTypes = readResponseTypes(data, grantTypes);

  // OAuth 2.1 §4.2: client_credentials is for confidential clients only.
  if (grantTypes.includes('client_credentials') && authMethod === 'none') {
    fail(
      'grant_types',
      'client_credentials requires a confidential client: token_endpoint_auth_method must be client_secret_basic, client_secret_post or private_key_jwt',
    );
  }
  const keys = readClientKeys(data, authMethod);
  const securityProfile = readNullableEnum(data, 'security_profile', SECURITY_PROFILES);
  const requirePar = readPushedRequestsRule(data, securityProfile);
  if (securityProfile === 'fapi2') checkFapi2(authMethod, keys.token_endpoint_auth_signing_alg);
  // Refresh tokens come only from code exchange (OAuth 2.1 §4.4 issues none to client_credentials).
  if (grantTypes.includes('refresh_token') && !grantTypes.includes('authorization_code')) {
    fail('grant_types', 'refresh_token requires authorization_code');
  }

  const redirectUris = readRedirectUris(
    data,
    'redirect_uris',
    applicationType,
    policy.nativeSchemes,
    policy.webHttpLoopback ?? false,
  );
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) {
    fail('redirect_uris', 'at least one redirect URI is required for authorization_code (OAuth 2.1 §2.3.1)');
  }

  const scopes = readScopes(data, 'scopes', policy);
  const defaultScopes = readScopes(data, 'default_scopes', policy);
  if (scopes.length > 0) {
    defaultScopes.forEach((scope, i) => {
      if (!scopes.includes(scope)) fail(`default_scopes[${i}]`, `"${scope}" is not one of the client's scopes`);
    });
  }

  return {
    name,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: readRedirectUris(
      data,
      'post_logout_redirect_uris',
      applicationType,
      policy.nativeSchemes,
      policy.webHttpLoopback ?? false,
    ),
    grant_types: grantTypes,
    response_types: responseTypes,
    token_endpoint_auth_method: authMethod,
    scopes,
    default_scopes: defaultScopes,
    resources: readResources(data, policy),
    application_type: applicationType,
    client_uri: readHttpsUrl(data, 'client_uri'),
    logo_uri: readHttpsUrl(data, 'logo_uri'),
    policy_uri: readHttpsUrl(data, 'policy_uri'),
    tos_uri: readHttpsUrl(data, 'tos_uri'),
    contacts: readList(data, 'contacts', 20, 320) ?? [],
    skip_consent: readBoolean(data, 'skip_consent'),
    backchannel_logout_uri: readBackchannelLogoutUri(data, policy),
    backchannel_logout_session_required: readBoolean(data, 'backchannel_logout_session_required'),
    dpop_bound_access_tokens: readDpopRule(data, securityProfile),
    id_token_signed_response_alg: readIdTokenAlg(data, policy),
    default_max_age: readMaxAge(data),
    require_auth_time: readBoolean(data, 'require_auth_time'),
    ...keys,
    require_pushed_authorization_requests: requirePar,
    security_profile: securityProfile,
  };
}

function readNullableEnum<T extends string>(
  input: Record<string, unknown>,
  field: string,
  allowed: readonly T[],
): T | null {
  const value = input[field];
  if (value === undefined || value === null) return null;
  return readEnum(input, field, allowed, allowed[0]!);
}

/**
 * The keys of a private_key_jwt client (RFC 7591 §2): `jwks` or `jwks_uri`, exactly one ("MUST NOT both
 * be present"), and the one signing algorithm it may use, if it names one.
 */
function readClientKeys(
  data: Record<string, unknown>,
  authMethod: ClientAuthMethod,
): Pick<ClientMetadata, 'jwks' | 'jwks_uri' | 'token_endpoint_auth_signing_alg'> {
  const jwks = readJwks(data);
  const jwksUri = readHttpsUrl(data, 'jwks_uri');
  if (jwks !== null && jwksUri !== null) fail('jwks', 'give jwks or jwks_uri, not both (RFC 7591 §2)');
  if (authMethod === 'private_key_jwt' && jwks === null && jwksUri === null)
    fail('jwks_uri', 'private_key_jwt needs the public keys: give jwks_uri or jwks (RFC 7591 §2)');
  const alg = readNullableEnum(data, 'token_endpoint_auth_signing_alg', ASSERTION_ALGS);
  if (alg !== null && authMethod !== 'private_key_jwt')
    fail('token_endpoint_auth_signing_alg', 'applies only to token_endpoint_auth_method private_key_jwt');
  return { jwks, jwks_uri: jwksUri, token_endpoint_auth_signing_alg: alg };
}

/** RFC 9126 §6 require_pushed_authorization_requests; the FAPI 2.0 profile implies it and may not turn it off. */
function readPushedRequestsRule(data: Record<string, unknown>, profile: SecurityProfile | null): boolean {
  const requested = readBoolean(data, 'require_pushed_authorization_requests');
  if (profile !== 'fapi2') return requested;
  // FAPI 2.0 Security Profile §5.3.2.2: the authorization server shall require PAR.
  if (data.require_pushed_authorization_requests === false)
    fail('require_pushed_authorization_requests', 'must be true for security_profile fapi2 (FAPI 2.0 §5.3.2.2)');
  return true;
}

/** RFC 9449 §5.2 dpop_bound_access_tokens; the FAPI 2.0 profile implies it and may not turn it off. */
function readDpopRule(data: Record<string, unknown>, profile: SecurityProfile | null): boolean {
  const requested = readBoolean(data, 'dpop_bound_access_tokens');
  if (profile !== 'fapi2') return requested;
  // FAPI 2.0 Security Profile §5.3.2.1: sender-constrained access tokens; Gatehouse offers DPoP (no mTLS).
  if (data.dpop_bound_access_tokens === false)
    fail('dpop_bound_access_tokens', 'must be true for security_profile fapi2 (FAPI 2.0 §5.3.2.1)');
  return true;
}

/** FAPI 2.0 Security Profile §5.3.2.1 and §5.4.1: asymmetric client authentication with a FAPI algorithm. */
function checkFapi2(authMethod: ClientAuthMethod, alg: AssertionAlg | null): void {
  if (authMethod !== 'private_key_jwt')
    fail(
      'token_endpoint_auth_method',
      'must be private_key_jwt for security_profile fapi2 (FAPI 2.0 §5.3.2.1; mutual TLS is not supported)',
    );
  if (alg !== null && !FAPI2_ASSERTION_ALGS.includes(alg))
    fail(
      'token_endpoint_auth_signing_alg',
      `must be one of ${FAPI2_ASSERTION_ALGS.join(', ')} for security_profile fapi2 (FAPI 2.0 §5.4.1)`,
    );
}

/** The client metadata part of a stored client, as input for re-validation after a partial change. */
export function clientMetadataOf(row: { [K in keyof ClientMetadata]: unknown }): Record<string, unknown> {
  return Object.fromEntries(CLIENT_METADATA_FIELDS.map((field) => [field, row[field]]));
}

/** Whether a client authenticates with a shared secret (client_secret_basic or client_secret_post). */
export function usesSecret(method: ClientAuthMethod): boolean {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}
