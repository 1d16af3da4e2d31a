import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FORM, mediaType } from '../../http/form.js';
import { DPOP_SIGNING_ALGS } from '../../oauth/dpop.js';
import { OAuthError } from '../../oauth/errors.js';

/** RFC 6750 §2.1: `Bearer` and a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
/** RFC 9449 §7.1: `DPoP` and the (DPoP-bound) access token, same token68 syntax. */
const DPOP = /^DPoP +([A-Za-z0-9\-._~+/]+=*)$/i;
/** RFC 9449 §7.1: the DPoP challenge names the proof algorithms accepted. */
const DPOP_CHALLENGE = `DPoP algs="${DPOP_SIGNING_ALGS.join(' ')}"`;
const MAX_TOKEN = 16384;

type BearerError = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

const STATUS: Record<BearerError, number> = { invalid_request: 400, invalid_token: 401, insufficient_scope: 403 };

/** RFC 6750 §3: the challenge, with the error (and its description, quotes and backslashes removed) when there is one. */
function challenge(reply: FastifyReply, error?: BearerError, description?: string): FastifyReply {
  const params = error
    ? ` error="${error}", error_description="${(description ?? '').replace(/["\\]/g, '')}"${
        error === 'insufficient_scope' ? ', scope="openid"' : ''
      }`
    : '';
  // RFC 9449 §7.1: with no credentials at all, both accepted schemes are offered.
  const offered = error ? `Bearer${params}` : ['Bearer', DPOP_CHALLENGE];
  return reply.header('www-authenticate', offered).header('cache-control', 'no-store');
}

/** RFC 9449 §7.1: a refusal under the DPoP scheme, with its error in a DPoP challenge. */
function refuseDpop(reply: FastifyReply, error: string, description: string, status = 401): FastifyReply {
  return reply
    .header(
      'www-authenticate',
      `${DPOP_CHALLENGE}, error="${error}", error_description="${description.replace(/["\\]/g, '')}"`,
    )
    .header('cache-control', 'no-store')
    .code(status)
    .send({ error, error_description: description });
}

function refuse(reply: FastifyReply, error: BearerError, description: string): FastifyReply {
  return challenge(reply, error, description).code(STATUS[error]).send({ error, error_description: description });
}

/**
 * The access token of a UserInfo request (OIDC Core §5.3.1: a bearer token per RFC 6750): in the
 * Authorization header (§2.1), or for POST in a form body's access_token (§2.2). Never in the URL (§2.3:
 * it ends up in logs and history; OAuth 2.1 drops it). `undefined`: no token was sent at all.
 */
function bearerToken(request: FastifyRequest): { token?: string; problem?: string } {
  const header = request.headers.authorization;
  const query = request.query as Record<string, unknown> | undefined;
  if (query && query.access_token !== undefined)
    return { problem: 'an access token in the URL is not accepted; send it in the Authorization header' };
  let fromBody: string | undefined;
  if (request.method === 'POST' && request.body !== undefined && request.body !== null) {
    if (mediaType(request) !== FORM) return { problem: `a UserInfo POST body must be ${FORM}` };
    const value = (request.body as Record<string, unknown>).access_token;
    if (Array.isArray(value)) return { problem: 'access_token is repeated' };
    if (typeof value === 'string' && value !== '') fromBody = value;
  }
  // RFC 6750 §2: a client must not use more than one method in a request.
  if (header !== undefined && fromBody !== undefined)
    return { problem: 'the access token was sent both in the Authorization header and in the body' };
  if (fromBody !== undefined) return { token: fromBody };
  if (header === undefined) return {};
  const match = BEARER.exec(header.trim());
  // §3.1: another scheme carries no bearer token (answered like none); a malformed Bearer one is a bad request.
  if (!match) return /^Bearer\b/i.test(header.trim()) ? { problem: 'malformed Bearer authorization header' } : {};
  return { token: match[1]! };
}

/**
 * GET and POST /userinfo (OIDC Core §5.3): the consented claims about the user an access token was
 * issued for. CORS like the token endpoint (browser clients call it); never cached. Refusals carry the
 * RFC 6750 §3 WWW-Authenticate challenge.
 */
export default async function userinfoRoute(app: FastifyInstance): Promise<void> {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const dpop = DPOP.exec(request.headers.authorization?.trim() ?? '');
    if (dpop) {
      const token = dpop[1]!;
      if (token.length > MAX_TOKEN) return refuseDpop(reply, 'invalid_token', 'the access token is invalid or expired');
      let answer;
      try {
        answer = await app.tokens.userinfoWithProof(token, request.method, request.headers.dpop);
      } catch (err) {
        // RFC 9449 §7.1, §9: a bad proof is invalid_dpop_proof; a missing nonce use_dpop_nonce with a fresh one.
        if (!(err instanceof OAuthError) || !['invalid_dpop_proof', 'use_dpop_nonce'].includes(err.error)) throw err;
        for (const [name, value] of Object.entries(err.headers ?? {})) reply.header(name, value);
        return refuseDpop(reply, err.error, err.description);
      }
      if (answer.kind === 'refused')
        return refuseDpop(reply, answer.error, answer.description, answer.error === 'insufficient_scope' ? 403 : 401);
      return reply.code(200).header('cache-control', 'no-store').send(answer.claims);
    }
    const { token, problem } = bearerToken(request);
    if (problem) return refuse(reply, 'invalid_request', problem);
    // RFC 6750 §3.1: no authentication at all gets the bare challenge, without an error code.
    if (token === undefined)
      return challenge(reply)
        .code(401)
        .send({ error: 'invalid_token', error_description: 'an access token is required' });
    if (token.length > MAX_TOKEN) return refuse(reply, 'invalid_token', 'the access token is invalid or expired');
    const answer = await app.tokens.userinfo(token);
    if (answer.kind === 'refused') return refuse(reply, answer.error, answer.description);
    return reply.code(200).header('cache-control', 'no-store').send(answer.claims);
  };
  app.get('/userinfo', handler);
  app.post('/userinfo', handler);
}
