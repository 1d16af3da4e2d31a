import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OAuthError, OAuthErrorCode } from '../../oauth/errors.js';
import { type ErrorRenderer, sendOAuthError } from '../../plugins/app/error-handler.js';
import { sendPage } from '../../plugins/external/view.js';

const HEADINGS: Partial<Record<OAuthErrorCode, string>> = {
  access_denied: 'Access denied',
  invalid_client: 'Unknown application',
  unauthorized_client: 'This application is not allowed to do that',
  invalid_scope: 'The application asked for something it may not have',
  invalid_target: 'The application asked for an unknown service',
  invalid_redirect_uri: 'The application’s return address is not registered',
  login_required: 'You need to sign in',
  consent_required: 'Your consent is needed',
  not_found: 'Page not found',
  method_not_allowed: 'This page cannot be used that way',
  payload_too_large: 'The request was too large',
  unsupported_media_type: 'The request was sent in an unsupported format',
  too_many_requests: 'Too many attempts',
  server_error: 'Something went wrong on our side',
  temporarily_unavailable: 'Temporarily unavailable',
};

/** A short human heading for an error page. */
export function errorHeading(err: Pick<OAuthError, 'error' | 'status'>): string {
  const heading = HEADINGS[err.error];
  if (heading) return heading;
  return err.status === 403 ? 'This request was refused' : 'This request cannot be completed';
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
        heading: errorHeading(err),
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
