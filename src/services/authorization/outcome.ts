import type { CookieInstruction } from '../../oauth/browser-binding.js';

/** Send the browser on with a 303 (RFC 9700 §4.12), setting or clearing these cookies. */
export interface RedirectOutcome {
  kind: 'redirect';
  location: string;
  cookies: CookieInstruction[];
}

/** Show a page (a template and the data it renders); `formRedirects` are where its forms may end up (CSP form-action). */
export interface PageOutcome {
  kind: 'page';
  view: string;
  data: Record<string, unknown>;
  formRedirects: string[];
  cookies: CookieInstruction[];
  /** The `ui_locales` of the authorization request the page belongs to (OIDC Core §3.1.2.1), if any. */
  uiLocales?: string | null;
}

/**
 * The step failed with `error` (an OAuthError is shown as the error page; anything else is a bug), but
 * the cookies were already decided and still go to the browser (a new session, a renewed binding).
 */
export interface ErrorOutcome {
  kind: 'error';
  error: unknown;
  cookies: CookieInstruction[];
}

/** What a step of the authorization flow asks the edge to answer. */
export type FlowOutcome = RedirectOutcome | PageOutcome | ErrorOutcome;

/** A 303 to `location`, with no cookies. */
export function redirect(location: string): RedirectOutcome {
  return { kind: 'redirect', location, cookies: [] };
}

/**
 * Runs the rest of a step once `cookies` are decided: they are added to its outcome, or, should it throw,
 * carried on an error outcome, so the browser gets them either way (as when a reply set them early).
 */
export async function carrying(cookies: CookieInstruction[], step: () => Promise<FlowOutcome>): Promise<FlowOutcome> {
  try {
    const outcome = await step();
    return { ...outcome, cookies: [...cookies, ...outcome.cookies] };
  } catch (error) {
    return { kind: 'error', error, cookies };
  }
}
