import { DomainError, type DomainErrorCode } from '../lib/errors.js';
import { OAuthError, type OAuthErrorCode } from '../oauth/errors.js';

/** How one DomainError code is answered over HTTP. */
interface Answer {
  error: OAuthErrorCode;
  status: number;
  /** What is sent instead of the message, when the message is for the operator only. */
  opaque?: string;
  headers?: Record<string, string>;
}

/** RFC 9110 §10.2.3: how long a caller should wait before retrying while a dependency is unavailable. */
const RETRY_AFTER_SECONDS = '5';

/** RFC 7591 §3.2.2: a bad redirect URI has its own code; `redirect_uris[2]` names an element of the list. */
function isRedirectUriField(field: string | undefined): boolean {
  return field !== undefined && /^redirect_uris(\[|$)/.test(field);
}

/**
 * The one mapping from a DomainError to its HTTP answer, for the public error handler, the admin API
 * and registration alike. It reads the typed code and field, never the message.
 */
const TABLE: Record<DomainErrorCode, (err: DomainError) => Answer> = {
  not_found: () => ({ error: 'not_found', status: 404 }),
  conflict: () => ({ error: 'conflict', status: 409 }),
  // An input that names a field is client metadata (RFC 7591 §3.2.2); anything else a plain bad request.
  invalid_input: (err) => ({
    error: isRedirectUriField(err.field)
      ? 'invalid_redirect_uri'
      : err.field !== undefined
        ? 'invalid_client_metadata'
        : 'invalid_request',
    status: 400,
  }),
  // RFC 6749 §5.2 / §4.1.2.1: the caller may retry later.
  unavailable: () => ({
    error: 'temporarily_unavailable',
    status: 503,
    headers: { 'retry-after': RETRY_AFTER_SECONDS },
  }),
  // The operator's to fix; the caller learns nothing of it (the handler logs the error).
  misconfigured: () => ({
    error: 'server_error',
    status: 500,
    opaque: 'the server could not complete the request',
  }),
};

/** The OAuthError a DomainError is answered with; its detail and the original error go along to the log. */
export function oauthErrorOf(err: DomainError): OAuthError {
  const answer = TABLE[err.code](err);
  return new OAuthError(answer.error, answer.opaque ?? err.message, {
    status: answer.status,
    ...(answer.headers !== undefined ? { headers: answer.headers } : {}),
    ...(err.detail !== undefined ? { detail: err.detail } : {}),
    cause: err,
  });
}

/** An OAuthError as it is, a DomainError through the table, anything else null (a bug: opaque 500). */
export function toOAuthError(err: unknown): OAuthError | null {
  if (err instanceof OAuthError) return err;
  if (err instanceof DomainError) return oauthErrorOf(err);
  return null;
}
