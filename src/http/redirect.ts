import type { FastifyReply } from 'fastify';

/**
 * The one 303 Gatehouse sends: RFC 9700 §4.12 (a POST, such as consent or sign-in, becomes a GET at the
 * target), never cached, and no Referer carrying the authorization request's URL along.
 */
export function seeOther(reply: FastifyReply, location: string): FastifyReply {
  return reply
    .code(303)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
}
