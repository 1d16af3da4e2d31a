import type { Config } from '../../config/index.js';
import type { Clock } from '../../lib/clock.js';
import type { ResourcePolicy } from '../checks/resource.js';
import type { ScopePolicy } from '../checks/scope.js';
import type { Signer } from '../tokens/access-token.js';

/** Token request parameters after the route's checks: single strings, except `resource` (RFC 8707 allows several). */
export interface TokenParams {
  grant_type: string;
  scope?: string;
  resource: string[];
  [name: string]: string | string[] | undefined;
}

/** The authenticated client as a grant sees it. */
export interface GrantClient {
  client_id: string;
  token_endpoint_auth_method: string;
  grant_types: readonly string[];
  scopes: readonly string[];
  default_scopes: readonly string[];
  resources: readonly string[];
  /** Who created it: admin, file, registration or metadata_document. */
  source: string;
  /** RFC 9449 §5.2: every token request of this client must carry a DPoP proof. */
  dpop_bound_access_tokens?: boolean;
  /** OIDC Registration 1.0 §2: the alg its ID tokens must use; null or absent: the active key's. */
  id_token_signed_response_alg?: string | null;
}

/** What every grant needs, prepared once at start. */
export interface GrantContext {
  config: Readonly<Config>;
  scopePolicy: ScopePolicy;
  resourcePolicy: ResourcePolicy;
  signer: () => Signer;
  /** The time: tokens' iat/exp and every expiry check read it. */
  clock: Clock;
}

/**
 * Key of what the audit trail records of a token response besides its fields: the access token's `sub` and
 * `aud` as signed. A symbol, so JSON.stringify never sends it; it saves reading the token back.
 */
export const ISSUED_TO = Symbol('issued to');

/** RFC 6749 §5.1 successful response; token_type DPoP for a DPoP-bound access token (RFC 9449 §5). */
export interface TokenResponse {
  /** The access token's subject and audience, exactly as signed (never serialised). */
  [ISSUED_TO]: { sub: string; aud: readonly string[] };
  access_token: string;
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  /** OIDC Core §3.1.3.3: when `openid` was granted. */
  id_token?: string;
}
