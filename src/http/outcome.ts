import type { FastifyReply } from 'fastify';
import type { CookieInstruction } from '../oauth/browser-binding.js';
import { sendPage } from '../plugins/external/view.js';
import type { FlowOutcome } from '../services/authorization/outcome.js';
import { seeOther } from './redirect.js';

/** Sets (or clears, `value: null`) the cookies a service asked for. */
export function applyCookies(reply: FastifyReply, cookies: readonly CookieInstruction[]): FastifyReply {
  for (const { name, value, options } of cookies) {
    if (value === null) reply.clearCookie(name, options);
    else reply.setCookie(name, value, options);
  }
  return reply;
}

/**
 * Turns a flow outcome into the reply: its cookies, then a 303 (seeOther), a page (with `pageData` the
 * edge adds, such as a form's action), or the error thrown for the route's error renderer.
 */
export async function sendOutcome(
  reply: FastifyReply,
  outcome: FlowOutcome,
  pageData: Record<string, unknown> = {},
): Promise<FastifyReply> {
  applyCookies(reply, outcome.cookies);
  switch (outcome.kind) {
    case 'redirect':
      return seeOther(reply, outcome.location);
    case 'page':
      return sendPage(reply, outcome.view, { ...outcome.data, ...pageData }, 200, {
        formRedirects: outcome.formRedirects,
        ...(outcome.uiLocales === undefined ? {} : { uiLocales: outcome.uiLocales }),
      });
    case 'error':
      throw outcome.error;
  }
}
