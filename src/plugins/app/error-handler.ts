import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { toOAuthError } from '../../http/errors.js';
import { OAuthError } from '../../oauth/errors.js';

/** A schema failure as "name must …" or "missing parameter: name", naming the parameter a client sent. */
function describeValidation(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return 'the request is invalid';
  const params = first.params as { missingProperty?: string; additionalProperty?: string };
  const where = error.validationContext && error.validationContext !== 'body' ? `${error.validationContext} ` : '';
  if (first.keyword === 'required') return `missing ${where}parameter: ${params.missingProperty}`;
  if (first.keyword === 'additionalProperties') return `unknown ${where}parameter: ${params.additionalProperty}`;
  const field = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  return `${where}${field || 'value'} ${first.message ?? 'is invalid'}`;
}

/**
 * Maps what a handler threw to an OAuthError: OAuthErrors as they are, DomainErrors through the one table
 * (src/http/errors.ts), Fastify's own errors (body parsing, validation, limits) by their code; null for the unexpected.
 */
export function fromFrameworkError(error: FastifyError): OAuthError | null {
  const known = toOAuthError(error);
  if (known) return known;
  if (error.validation) return new OAuthError('invalid_request', describeValidation(error));
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OAuthError('payload_too_large', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OAuthError('unsupported_media_type', 'unsupported content type');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new OAuthError('invalid_request', 'content-length does not match the body');
  }
  const status = error.statusCode ?? 500;
  if (status === 413) return new OAuthError('payload_too_large', 'request body is too large');
  if (status === 415) return new OAuthError('unsupported_media_type', 'unsupported content type');
  if (status === 429) return new OAuthError('too_many_requests', 'too many requests', { status: 429 });
  // Fastify's 4xx messages describe the request, not the server, so they are safe to return.
  if (status >= 400 && status < 500)
    return new OAuthError('invalid_request', error.message || 'bad request', { status });
  return null;
}

/** Writes an OAuthError as RFC 6749 §5.2 JSON. */
export function sendOAuthError(reply: FastifyReply, err: OAuthError): FastifyReply {
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  return reply
    .code(err.status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send(err.toJSON());
}

/** Renders an error the route chose to show as a page or redirect; decorated by later plugins. */
export type ErrorRenderer = (
  err: OAuthError,
  request: FastifyRequest,
  reply: FastifyReply,
) => FastifyReply | Promise<FastifyReply>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** How this route shows errors; JSON unless a renderer is named. */
    errorRenderer?: ErrorRenderer;
  }
}

interface RoutePattern {
  method: string;
  pattern: RegExp;
}

function compilePattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}/?$`);
}

/**
 * The one error handler: OAuth and domain errors as RFC JSON (or the route's renderer), their detail
 * logged; 404/405 as JSON; anything else as an opaque server_error.
 */
export default fp(
  async function errorHandler(app: FastifyInstance) {
    const routes: RoutePattern[] = [];
    app.addHook('onRoute', (route) => {
      // A catch-all (the CORS preflight's OPTIONS *) says nothing about which paths exist.
      if (route.url.includes('*')) return;
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) routes.push({ method, pattern: compilePattern(route.url) });
    });

    app.setErrorHandler(async (error: FastifyError, request, reply) => {
      const oauthError = fromFrameworkError(error);
      const render = request.routeOptions.config?.errorRenderer;
      if (!oauthError) {
        request.log.error({ err: error }, 'unhandled error');
        // A page route shows even this as a page (a browser is on the other end), with nothing internal in it.
        const opaque = new OAuthError('server_error', 'the server could not complete the request');
        return render ? render(opaque, request, reply) : sendOAuthError(reply, opaque);
      }
      // `detail` is for the operator: logged here, never in the answer.
      const detail = oauthError.detail === undefined ? {} : { detail: oauthError.detail };
      if (oauthError.status >= 500)
        request.log.error({ err: oauthError.cause ?? oauthError, ...detail }, oauthError.description);
      else if (oauthError.detail !== undefined)
        request.log.info({ error: oauthError.error, ...detail }, oauthError.description);
      return render ? render(oauthError, request, reply) : sendOAuthError(reply, oauthError);
    });

    app.setNotFoundHandler(async (request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
      if (allowed.length > 0) {
        reply.header('allow', allowed.join(', '));
        return sendOAuthError(reply, new OAuthError('method_not_allowed', `${request.method} is not allowed here`));
      }
      return sendOAuthError(reply, new OAuthError('not_found', 'no such endpoint'));
    });
  },
  { name: 'error-handler' },
);
