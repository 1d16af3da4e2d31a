/** Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7009, RFC 7591 §3.2.2, RFC 8707 and RFC 6750, plus Gatehouse's HTTP-level ones. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'too_many_requests'
  // RFC 9449 §5, §8: a DPoP proof is invalid; a server nonce is required.
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  // RFC 9101 §6.2 (used by RFC 9126 §4): a request_uri that is unknown, expired, used or another client's.
  | 'invalid_request_uri'
  // RFC 9101 §6.2 / OIDC Core §3.1.2.6: a `request` object, which this server does not support.
  | 'request_not_supported';

const DEFAULT_STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  access_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  server_error: 500,
  temporarily_unavailable: 503,
};

export interface OAuthErrorOptions {
  status?: number;
  /** Whether the error may be sent to the client's redirect_uri (only once that URI has been validated). */
  redirectable?: boolean;
  headers?: Record<string, string>;
  /** Logged by the error handler, never sent: what an operator needs and a client must not see. */
  detail?: string;
  cause?: unknown;
}

/** The one error type Gatehouse's handlers throw; the error handler renders it per RFC 6749. */
export class OAuthError extends Error {
  readonly status: number;
  readonly redirectable: boolean;
  readonly headers: Record<string, string>;
  readonly detail: string | undefined;

  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    options: OAuthErrorOptions = {},
  ) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.status = options.status ?? DEFAULT_STATUS[error] ?? 400;
    this.redirectable = options.redirectable ?? false;
    this.headers = options.headers ?? {};
    this.detail = options.detail;
  }

  /** RFC 6749 §5.2 body. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: rfcDescription(this.description) };
  }
}

/**
 * An error_description in the character set RFC 6749 §4.1.2.1 and §5.2 allow (%x20-21 / %x23-5B /
 * %x5D-7E), without angle brackets, and bounded: it may carry request text into a client's page.
 */
export function rfcDescription(text: string): string {
  return text
    .replace(/§/g, 'section ')
    .replace(/"/g, "'")
    .replace(/\\/g, '/')
    .replace(/[^\x20-\x21\x23-\x3B\x3D\x3F-\x5B\x5D-\x7E]/g, '?')
    .slice(0, 300);
}
