import { ClientMetadataError, NO_EXTRA_SCHEMES, redirectUriProblem, usesSecret } from './client-metadata.js';
import type { Client } from './client.js';

/**
 * RFC 7591 §2 members stored under the same name (with `jwks`, `jwks_uri` and
 * `token_endpoint_auth_signing_alg` for private_key_jwt, RFC 9126 §6 `require_pushed_authorization_requests`,
 * and `security_profile`, which only ever makes a client stricter). `client_name` and `scope` are mapped;
 * everything else a client sends (software_id, software_version, resource, skip_consent…) is ignored, as
 * RFC 7591 §2 requires for metadata the server does not understand or does not let a client set. An
 * RFC 7592 §2.2 update that omits one of these resets it.
 */
export const SAME_NAME_FIELDS = [
  'redirect_uris',
  'post_logout_redirect_uris',
  'grant_types',
  'response_types',
  'token_endpoint_auth_method',
  'application_type',
  'client_uri',
  'logo_uri',
  'policy_uri',
  'tos_uri',
  'contacts',
  'backchannel_logout_uri',
  'backchannel_logout_session_required',
  // RFC 9449 §5.2.
  'dpop_bound_access_tokens',
  'id_token_signed_response_alg',
  'default_max_age',
  'require_auth_time',
  'jwks',
  'jwks_uri',
  'token_endpoint_auth_signing_alg',
  'require_pushed_authorization_requests',
  'security_profile',
] as const;

/** Name given to a client that registers without client_name when nothing better can be derived. */
export const UNNAMED_CLIENT = 'Unnamed client';

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** RFC 7591 §2: `scope` is one string of space-separated values; absent means none registered. */
function scopeTokens(value: unknown): string[] | undefined {
  if (!present(value)) return undefined;
  if (typeof value !== 'string')
    throw new ClientMetadataError('scope', 'must be a string of space-separated scope values (RFC 7591 §2)');
  return value.split(' ').filter((s) => s !== '');
}

/**
 * RFC 7591 §2 makes client_name optional; the consent page needs a name, so an absent one becomes the
 * host (or private-use scheme) of the first redirect URI, else of client_uri, else "Unnamed client".
 * The consent page shows the redirect host beside it anyway, so this adds no claim the client did not make.
 */
function defaultClientName(body: Record<string, unknown>): string {
  const candidates = [Array.isArray(body.redirect_uris) ? body.redirect_uris[0] : undefined, body.client_uri];
  for (const candidate of candidates) {
    if (typeof candidate !== 'string') continue;
    try {
      const url = new URL(candidate);
      const name = url.host || url.protocol.replace(/:$/, '');
      if (name) return name.slice(0, 200);
    } catch {
      // not a URL: the validator reports it
    }
  }
  return UNNAMED_CLIENT;
}

/**
 * Whether redirect URIs are a native app's: all RFC 8252 §7.1 private-use scheme or §7.3 loopback http,
 * or, for a public client, such URIs beside §7.2 claimed https ones (VS Code registers its https broker
 * pages with its loopback URIs). MCP clients register these without saying application_type "native".
 */
export function looksNative(
  uris: unknown,
  authMethod?: unknown,
  nativeSchemes: ReadonlySet<string> = NO_EXTRA_SCHEMES,
): boolean {
  if (!Array.isArray(uris) || uris.length === 0) return false;
  const kinds = uris.map((uri) => {
    if (typeof uri !== 'string' || redirectUriProblem(uri, 'native', nativeSchemes) !== null) return 'invalid';
    return new URL(uri).protocol === 'https:' ? 'https' : 'native';
  });
  if (kinds.includes('invalid') || !kinds.includes('native')) return false;
  // RFC 8252 §8.4: native apps are public clients; a confidential client mixing https and loopback stays web.
  return kinds.every((kind) => kind === 'native') || authMethod === 'none';
}

/** What a registration (or RFC 7592 update) request asks for, as validateClientMetadata input. */
export interface RegistrationInput {
  /** Validator input: only fields the validator knows, in its names. */
  metadata: Record<string, unknown>;
  /** The scope tokens sent, to name the bad one in an error. */
  scopes: string[];
}

/**
 * Maps an RFC 7591 §2 registration request onto client metadata (validateClientMetadata's fields). Defaults are the
 * validator's (RFC 7591 §2): grant_types [authorization_code], response_types [code],
 * token_endpoint_auth_method client_secret_basic. A registered client never skips consent.
 */
export function clientMetadataFromRegistration(
  body: Record<string, unknown>,
  nativeSchemes: ReadonlySet<string> = NO_EXTRA_SCHEMES,
): RegistrationInput {
  // A self-registered client acts for users, through their consent. client_credentials would let anyone
  // who can reach /register mint tokens for the APIs in its own name, with no user and no operator
  // deciding: machine clients are an operator's to create (admin API, CLI, CLIENTS_FILE).
  if (Array.isArray(body.grant_types) && body.grant_types.includes('client_credentials')) {
    throw new ClientMetadataError(
      'grant_types',
      'client_credentials is not available to self-registered clients; an operator registers machine clients',
    );
  }
  const metadata: Record<string, unknown> = {};
  for (const field of SAME_NAME_FIELDS) if (present(body[field])) metadata[field] = body[field];
  metadata.name = present(body.client_name) ? body.client_name : defaultClientName(body);
  const scopes = scopeTokens(body.scope) ?? [];
  metadata.scopes = scopes;
  if (
    !present(body.application_type) &&
    looksNative(body.redirect_uris, body.token_endpoint_auth_method, nativeSchemes)
  )
    metadata.application_type = 'native';
  metadata.skip_consent = false;
  return { metadata, scopes };
}

/**
 * A client metadata error restated in the registration request's own terms (client_name, scope), so the
 * RFC 7591 §3.2.2 answer names the member the client sent; the field still decides the error code.
 */
export function inRegistrationTerms(err: ClientMetadataError, scopes: readonly string[]): ClientMetadataError {
  let field = err.field;
  let reason = err.reason;
  if (field === 'name') field = 'client_name';
  const scopeIndex = /^scopes\[(\d+)\]$/.exec(field);
  if (scopeIndex) {
    field = 'scope';
    const token = scopes[Number(scopeIndex[1])];
    if (token !== undefined && !reason.includes(`"${token}"`)) reason = `"${token}" ${reason}`;
  } else if (field === 'scopes') {
    field = 'scope';
  }
  return field === err.field && reason === err.reason ? err : new ClientMetadataError(field, reason);
}

/** The RFC 7592 client configuration endpoint of a client. */
export function registrationClientUri(issuer: string, clientId: string): string {
  return `${issuer}/register/${encodeURIComponent(clientId)}`;
}

/** What a registration response carries besides the stored metadata. */
export interface RegistrationExtras {
  /** A secret issued by this request; only its hash is stored, so it is never shown again. */
  clientSecret?: string | null;
  /** The registration access token, only when this request issued it. */
  registrationAccessToken?: string;
}

/**
 * The registration response: RFC 7591 §3.2.1 / RFC 7592 §3 client information response, the registered
 * metadata in RFC 7591 names (with the defaults the server applied), never a stored hash.
 */
export function registrationResponse(
  client: Client,
  issuer: string,
  extras: RegistrationExtras = {},
): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    client_id: client.client_id,
    client_id_issued_at: Math.floor(new Date(client.created_at).getTime() / 1000),
  };
  if (extras.clientSecret) doc.client_secret = extras.clientSecret;
  // RFC 7591 §3.2.1: required with a secret; 0 = it does not expire.
  if (extras.clientSecret || usesSecret(client.token_endpoint_auth_method)) doc.client_secret_expires_at = 0;
  if (extras.registrationAccessToken) doc.registration_access_token = extras.registrationAccessToken;
  doc.registration_client_uri = registrationClientUri(issuer, client.client_id);
  doc.client_name = client.name;
  doc.redirect_uris = [...client.redirect_uris];
  if (client.post_logout_redirect_uris.length > 0)
    doc.post_logout_redirect_uris = [...client.post_logout_redirect_uris];
  doc.grant_types = [...client.grant_types];
  doc.response_types = [...client.response_types];
  doc.token_endpoint_auth_method = client.token_endpoint_auth_method;
  doc.application_type = client.application_type;
  if (client.scopes.length > 0) doc.scope = client.scopes.join(' ');
  for (const field of ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri'] as const)
    if (client[field] !== null) doc[field] = client[field];
  if (client.contacts.length > 0) doc.contacts = [...client.contacts];
  if (client.backchannel_logout_uri !== null) {
    doc.backchannel_logout_uri = client.backchannel_logout_uri;
    doc.backchannel_logout_session_required = client.backchannel_logout_session_required;
  }
  // RFC 9449 §5.2: false when omitted.
  doc.dpop_bound_access_tokens = client.dpop_bound_access_tokens;
  // OpenID Connect Registration 1.0 §2.
  if (client.id_token_signed_response_alg !== null)
    doc.id_token_signed_response_alg = client.id_token_signed_response_alg;
  if (client.default_max_age !== null) doc.default_max_age = client.default_max_age;
  if (client.require_auth_time) doc.require_auth_time = true;
  if (client.jwks !== null) doc.jwks = client.jwks;
  if (client.jwks_uri !== null) doc.jwks_uri = client.jwks_uri;
  if (client.token_endpoint_auth_signing_alg !== null)
    doc.token_endpoint_auth_signing_alg = client.token_endpoint_auth_signing_alg;
  if (client.require_pushed_authorization_requests) doc.require_pushed_authorization_requests = true;
  if (client.security_profile !== null) doc.security_profile = client.security_profile;
  return doc;
}
