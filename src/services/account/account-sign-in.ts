import type { Config } from '../../config/index.js';
import { createAccountLoginRequest, type LoginRequestSigner } from '../../handshake/login-request.js';
import type { LoginResponse } from '../../handshake/login-response.js';
import type { Clock } from '../../lib/clock.js';
import { type CookieInstruction, type CookieJar, cookieName, cookieOptions } from '../../oauth/browser-binding.js';
import type { CsrfTokens } from '../../oauth/csrf.js';
import { OAuthError } from '../../oauth/errors.js';
import { generateToken, hashSecret, isOpaqueToken } from '../../oauth/secrets.js';
import { carrying, type FlowOutcome, redirect } from '../authorization/outcome.js';
import type { SessionService } from '../sessions/session-service.js';

/**
 * The account pages a sign-in may return to, by name, and their paths under the issuer. The state names
 * one of these, never a URL: whatever comes back, the browser can only land on one of Gatehouse's own pages.
 */
export const ACCOUNT_DESTINATIONS = { apps: '/account/apps' } as const;
export type AccountDestination = keyof typeof ACCOUNT_DESTINATIONS;

/** Every account sign-in's jti starts with this; a pending authorization request's id (43 base64url) never has a dot. */
const PREFIX = 'account.';
const STATE_FORM = /^account\.([a-z]{1,16})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;
const CSRF_PURPOSE = 'account-sign-in';
const COOKIE_BASE = 'gatehouse_account';

/** What an account sign-in needs. */
export interface AccountSignInDeps {
  config: Readonly<Pick<Config, 'issuer' | 'flow' | 'handshake'>>;
  sessions: SessionService;
  /** The active signing key (signs login_request when there is no HANDSHAKE_SECRET). */
  signer: () => LoginRequestSigner;
  /** The HMAC that signs the state (the forms' CSRF key, another purpose). */
  csrf: CsrfTokens;
  clock: Clock;
}

/**
 * Signing in for Gatehouse's own account pages (the connected-apps page), through the same host handshake as
 * an authorization request but with no pending request row: the login_request's `jti` is a signed state,
 * `account.<destination>.<exp>.<mac>`, where the MAC (HMAC-SHA-256 under a key derived from
 * KEY_ENCRYPTION_SECRET) covers the destination, the expiry and the hash of a one-time cookie set on this
 * browser. The host echoes the jti as `request`; /sign-in/complete hands such answers here. The answer is
 * accepted only in the browser holding that cookie (as the binding cookie does for authorization requests,
 * docs/handshake.md step 3), only before the expiry, and once: the cookie is cleared whatever the outcome.
 * The destination is a name from ACCOUNT_DESTINATIONS, so no URL ever comes from the request: no open redirect.
 */
export class AccountSignIn {
  readonly cookieName: string;
  readonly #deps: AccountSignInDeps;

  constructor(deps: AccountSignInDeps) {
    this.#deps = deps;
    this.cookieName = cookieName(deps.config, COOKIE_BASE);
  }

  /** Whether a login_response's `request` names an account sign-in (rather than an authorization request). */
  owns(requestId: string): boolean {
    return requestId.startsWith(PREFIX);
  }

  /** Sends the browser to the host's sign-in, to come back signed in at `destination`. */
  async start(destination: AccountDestination, cookies: CookieJar): Promise<FlowOutcome> {
    const { config, clock } = this.#deps;
    if (!config.handshake.signInUrl)
      throw new OAuthError('temporarily_unavailable', 'sign-in is not configured (SIGN_IN_URL)', { status: 503 });
    // A browser already holding the cookie (another tab signing in) keeps it, so the two do not undo each other.
    const held = cookies[this.cookieName];
    const value = typeof held === 'string' && isOpaqueToken(held) ? held : generateToken();
    const ttl = config.flow.requestTtl;
    const exp = Math.floor(clock().getTime() / 1000) + ttl;
    const jti = `${PREFIX}${destination}.${exp}.${this.#mac(value, destination, exp)}`;
    const location = await createAccountLoginRequest(
      { handshake: config.handshake, issuer: config.issuer, signer: this.#deps.signer, clock },
      jti,
      new Date(exp * 1000),
    );
    return { ...redirect(location), cookies: [{ name: this.cookieName, value, options: cookieOptions(config, ttl) }] };
  }

  /**
   * A verified login_response whose `request` is an account sign-in (`owns`): checks the state against this
   * browser's cookie, then signs the browser in (a new session replacing its previous one) and sends it to
   * the destination's page.
   */
  async answer(answer: LoginResponse, cookies: CookieJar): Promise<FlowOutcome> {
    const held = cookies[this.cookieName];
    // Single use: whatever happens next, this browser's cookie is gone, so the same answer cannot come back.
    const clear: CookieInstruction[] =
      held === undefined ? [] : [{ name: this.cookieName, value: null, options: cookieOptions(this.#deps.config, 0) }];
    return carrying(clear, async () => {
      const destination = this.#check(answer.request, held);
      if (answer.kind === 'error')
        throw new OAuthError(
          answer.error,
          answer.description ??
            (answer.error === 'access_denied'
              ? 'the host app declined the sign-in'
              : 'the user is not signed in at the host app'),
        );
      const { sessions } = this.#deps;
      const previous = await sessions.current(cookies[sessions.cookieName]);
      const created = await sessions.create({
        sub: answer.sub,
        authTime: answer.authTime,
        amr: answer.amr,
        acr: answer.acr,
        claims: answer.claims,
      });
      // The new session replaces the browser's old one (same cookie name); the old row must not outlive it.
      if (previous && previous.idHash !== created.session.idHash) await sessions.revoke(previous.idHash);
      return {
        ...redirect(`${this.#deps.config.issuer}${ACCOUNT_DESTINATIONS[destination]}`),
        cookies: [created.cookie],
      };
    });
  }

  /** The destination a state names, once its expiry and its MAC over this browser's cookie are checked. */
  #check(state: string, held: string | undefined): AccountDestination {
    const match = STATE_FORM.exec(state);
    const destination = match?.[1];
    const exp = Number(match?.[2]);
    if (!match || !Object.hasOwn(ACCOUNT_DESTINATIONS, destination!) || exp * 1000 <= this.#deps.clock().getTime()) {
      throw new OAuthError(
        'invalid_request',
        'the sign-in request this answer names is unknown or has expired; open the page again',
      );
    }
    // docs/handshake.md step 3: only the browser that started the sign-in may bring its answer back.
    if (
      typeof held !== 'string' ||
      !isOpaqueToken(held) ||
      !this.#deps.csrf.verify(match[3], CSRF_PURPOSE, hashSecret(held), `${destination}.${exp}`)
    ) {
      throw new OAuthError(
        'invalid_request',
        'this sign-in was started in another browser, has already been used, or its cookie has expired; open the page again',
        { status: 403 },
      );
    }
    return destination as AccountDestination;
  }

  #mac(cookieValue: string, destination: AccountDestination, exp: number): string {
    return this.#deps.csrf.issue(CSRF_PURPOSE, hashSecret(cookieValue), `${destination}.${exp}`);
  }
}
