import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Where a client's registration came from. `metadata_document`: resolved from the Client ID Metadata
 * Document its client_id URL names, and refreshed from it (draft-ietf-oauth-client-id-metadata-document).
 */
export type ClientSource = 'admin' | 'file' | 'registration' | 'metadata_document';

/** Row of `clients`: one OAuth client. Secrets are stored only as SHA-256 hashes. */
export interface ClientTable {
  client_id: string;
  secret_hash: string | null;
  name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: Generated<string[]>;
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  scopes: string[];
  default_scopes: Generated<string[]>;
  resources: string[];
  application_type: 'web' | 'native';
  client_uri: string | null;
  logo_uri: string | null;
  policy_uri: string | null;
  tos_uri: string | null;
  contacts: Generated<string[]>;
  skip_consent: Generated<boolean>;
  /** RFC 9449 §5.2: every token request of this client must carry a DPoP proof. */
  dpop_bound_access_tokens: Generated<boolean>;
  source: ClientSource;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  secret_rotated_at: Date | null;
  last_used_at: Date | null;
  disabled_at: Date | null;
  /** OpenID Connect Back-Channel Logout §2.2: where logout tokens are POSTed; null for none. */
  backchannel_logout_uri: Generated<string | null>;
  /** Back-Channel Logout §2.2: the client needs `sid` in logout tokens. */
  backchannel_logout_session_required: Generated<boolean>;
  /** RFC 7592: hash of the registration access token of a dynamically registered client. */
  registration_access_token_hash: Generated<string | null>;
  /** A metadata-document client's document is fresh until then (its HTTP cache lifetime); null otherwise. */
  document_expires_at: Generated<Date | null>;
  /** OpenID Connect Registration 1.0 §2: the ID token's alg (null: the active key's), default max_age, require_auth_time. */
  id_token_signed_response_alg: Generated<string | null>;
  default_max_age: Generated<number | null>;
  require_auth_time: Generated<boolean>;
  /** RFC 7591 §2: the client's public keys (a JWK Set) for private_key_jwt, by value; null otherwise. */
  jwks: Generated<ClientJwks | null>;
  /** RFC 7591 §2: where the client publishes its JWK Set, by reference; null otherwise. */
  jwks_uri: Generated<string | null>;
  /** RFC 7591 §2: the one JWS algorithm its client assertions must use; null for any the server allows. */
  token_endpoint_auth_signing_alg: Generated<string | null>;
  /** RFC 9126 §6: /authorize accepts this client's requests only as pushed authorization requests. */
  require_pushed_authorization_requests: Generated<boolean>;
  /** A named set of stricter rules the client is held to ('fapi2': FAPI 2.0 Security Profile), or null. */
  security_profile: Generated<'fapi2' | null>;
}

/** A JWK Set (RFC 7517 §5) of public keys, as stored in `clients.jwks` (jsonb). */
export interface ClientJwks {
  keys: Array<Record<string, unknown>>;
}

export type ClientRow = Selectable<ClientTable>;
export type NewClientRow = Insertable<ClientTable>;
export type ClientUpdate = Updateable<ClientTable>;
