import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OAuthError, OAuthErrorCode } from '../../oauth/errors.js';
import { type ErrorRenderer, sendOAuthError } from '../../plugins/app/error-handler.js';
import { sendPage } from '../../plugins/external/view.js';

/** The error codes with a heading of their own in the catalogues (`error.heading.<code>`). */
const HEADED: ReadonlySet<OAuthErrorCode> = new Set<OAuthErrorCode>([
  'access_denied',
  'invalid_client',
  'unauthorized_client',
  'invalid_scope',
  'invalid_target',
  'invalid_redirect_uri',
  'login_required',
  'consent_required',
  'not_found',
  'method_not_allowed',
  'payload_too_large',
  'unsupported_media_type',
  'too_many_requests',
  'server_error',
  'temporarily_unavailable',
]);

/** The catalogue key of a short human heading for an error page. */
export function errorHeadingKey(err: Pick<OAuthError, 'error' | 'status'>): string {
  if (HEADED.has(err.error)) return `error.heading.${err.error}`;
  return err.status === 403 ? 'error.heading.refused' : 'error.heading.default';
}

/** An error description (written for RFC 6749 `error_description`) as a sentence for a person. */
export function asSentence(description: string): string {
  const text = description.trim();
  if (text === '') return '';
  const capitalised = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}

/**
 * Renders an OAuthError as the error page (never a redirect): for requests whose redirect_uri is not
 * validated, or that belong to no client at all (/authorize, /sign-in/complete, /consent).
 */
export const htmlErrorRenderer: ErrorRenderer = async (
  err: OAuthError,
  request: FastifyRequest,
  reply: FastifyReply,
) => {
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  try {
    return await sendPage(
      reply,
      'error',
      {
        headingKey: errorHeadingKey(err),
        description: asSentence(err.description),
        error: err.error,
        status: err.status,
        requestId: request.id,
      },
      err.status,
    );
  } catch (renderError) {
    // A broken template must not turn a 4xx into an opaque 500: the RFC JSON still says what went wrong.
    request.log.error({ err: renderError }, 'could not render the error page');
    return sendOAuthError(reply, err);
  }
};
