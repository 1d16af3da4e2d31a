import { jwtVerify } from 'jose';
import { answerLoginRequest, HOST_ID, HOST_SECRET, SIGN_IN_URL, signLoginResponse } from '../fixtures/host.js';
import { Browser, type Page } from './browser.js';
import { ISSUER } from './issuer.js';
import { challengeOf } from './pkce.js';

/** Path and query of a Location (absolute or relative to ISSUER), for app.inject. */
export function pathOf(location: string | string[] | undefined): string {
  const url = new URL(String(location), ISSUER);
  return `${url.pathname}${url.search}`;
}

/** The value of the consent page's CSRF field. */
function csrfOf(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html) ?? /name="csrf_token" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the consent page');
  return match[1]!;
}

/** Where the browser lands after signing in as `sub` for an /authorize URL (the consent page or the client). */
export async function signIn(browser: Browser, url: string, sub = 'alice'): Promise<Page> {
  const start = await browser.get(url);
  if (start.statusCode !== 303) throw new Error(`authorize: ${start.statusCode} ${start.body}`);
  return browser.get(await answerLoginRequest(start.headers.location, { sub }));
}

/** Runs authorize → sign-in → consent (allow) and returns the redirect the client receives. */
export async function authorizeAndConsent(browser: Browser, url: string): Promise<URL> {
  const complete = await signIn(browser, url);
  const location = String(complete.headers.location);
  if (!location.includes('/consent?request=')) throw new Error(`expected the consent page, got ${location}`);
  return consentFrom(browser, location);
}

/** Runs authorize → sign-in → consent when it is asked (allow) and returns the redirect the client receives. */
export async function authorize(browser: Browser, url: string): Promise<URL> {
  const complete = await signIn(browser, url);
  const location = String(complete.headers.location);
  if (location.includes('/consent?request=')) return consentFrom(browser, location);
  return new URL(location);
}

async function consentFrom(browser: Browser, location: string): Promise<URL> {
  const consent = await browser.get(pathOf(location));
  const requestId = new URL(location, ISSUER).searchParams.get('request')!;
  const allowed = await browser.postForm('/consent', {
    request: requestId,
    csrf: csrfOf(consent.body),
    decision: 'allow',
  });
  if (allowed.statusCode !== 303) throw new Error(`consent: ${allowed.statusCode} ${allowed.body}`);
  return new URL(String(allowed.headers.location));
}

/** What the scripted user does at each step. */
export interface UserScript {
  /** The user id the host signs in. Default `alice`. */
  sub?: string;
  /** The button pressed on the consent page. Default `allow`. */
  decision?: 'allow' | 'deny';
  /** What the host adds to its login_response beside sub (claims, acr, amr, auth_time: docs/handshake.md). */
  answer?: Record<string, unknown>;
  /** Sees the verified login_request's claims (the hints a host receives). */
  onLoginRequest?: (payload: Record<string, unknown>) => void;
  /** Sees the consent page's HTML each time it is shown. */
  onConsent?: (html: string) => void;
}

/** The hidden fields and action of the consent page's decision form (or any page's POST form with a csrf field). */
export function consentForm(html: string, pageUrl: URL): { action: URL; fields: Record<string, string> } {
  const form = /<form\b[^>]*\bmethod="post"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error('no POST form on the consent page');
  const action = /\baction="([^"]*)"/i.exec(form[0])?.[1];
  const fields: Record<string, string> = {};
  for (const input of form[1]!.matchAll(/<input\b[^>]*>/gi)) {
    if (!/\btype="hidden"/i.test(input[0])) continue;
    const name = /\bname="([^"]*)"/i.exec(input[0])?.[1];
    const value = /\bvalue="([^"]*)"/i.exec(input[0])?.[1];
    if (name !== undefined && value !== undefined) fields[name] = decodeEntities(value);
  }
  if (!fields.csrf) throw new Error('the consent form has no csrf field');
  return { action: new URL(decodeEntities(action ?? ''), pageUrl), fields };
}

/** Undoes the HTML escaping of an attribute value. */
export function decodeEntities(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_m, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * A user in a browser against a listening Gatehouse at `issuer` (real HTTP through Browser's socket
 * transport) and the test host at SIGN_IN_URL, who signs in with a signed login_response
 * (docs/handshake.md) and answers the consent page. No server runs at the client's redirect URI: the flow
 * ends when a redirect leaves Gatehouse and the host, and that URL is returned. The host is the HS256 one
 * of HANDSHAKE_ENV (test/fixtures/host.ts).
 */
export class UserAgent extends Browser {
  private readonly issuerOrigin: string;

  constructor(readonly issuer: string) {
    super(undefined, issuer);
    this.issuerOrigin = new URL(issuer).origin;
  }

  /**
   * Runs an authorization request the way a user in a browser would: follows Gatehouse's redirects,
   * signs in at the host when sent there, presses the consent button when asked, and returns the
   * URL of the redirect that leaves Gatehouse for the client (code or error, state, iss).
   */
  async authorize(authorizationUrl: URL | string, script: UserScript = {}): Promise<URL> {
    let next = new URL(authorizationUrl);
    let res = await this.request(next);
    for (let hop = 0; hop < 10; hop++) {
      if (res.status === 200 && next.origin === this.issuerOrigin && next.pathname.endsWith('/consent')) {
        script.onConsent?.(res.body);
        const { action, fields } = consentForm(res.body, next);
        next = action;
        res = await this.request(action, { form: { ...fields, decision: script.decision ?? 'allow' } });
        continue;
      }
      if (res.status !== 303 || res.location === null) {
        throw new Error(`${next.href}: expected a 303, got ${res.status} ${res.body.slice(0, 500)}`);
      }
      const target = new URL(res.location);
      if (target.href.startsWith(`${SIGN_IN_URL}?`)) {
        next = await this.signInAtHost(target, script);
      } else if (target.origin === this.issuerOrigin) {
        next = target;
      } else {
        return target;
      }
      res = await this.request(next);
    }
    throw new Error(`too many redirects: ${this.hops.map((h) => `${h.status} ${h.url}`).join(' → ')}`);
  }

  /**
   * The host's side of the handshake, as docs/handshake.md tells a host to do it: verify the
   * login_request (HS256 under the shared secret, typ, iss, aud, exp), check return_to is this
   * Gatehouse's, sign the user in, and answer with a login_response. Returns where the host sends the browser.
   */
  private async signInAtHost(signInUrl: URL, script: UserScript): Promise<URL> {
    const jwt = signInUrl.searchParams.get('login_request');
    if (!jwt) throw new Error('the host was sent no login_request');
    const { payload } = await jwtVerify<{ return_to: string }>(jwt, new TextEncoder().encode(HOST_SECRET), {
      algorithms: ['HS256'],
      typ: 'login-request+jwt',
      issuer: this.issuer,
      audience: HOST_ID,
    });
    if (payload.return_to !== `${this.issuer}/sign-in/complete`)
      throw new Error(`unexpected return_to ${payload.return_to}`);
    if (typeof payload.jti !== 'string') throw new Error('login_request without jti');
    script.onLoginRequest?.(payload);
    const response = await signLoginResponse({
      ...script.answer,
      request: payload.jti,
      aud: this.issuer,
      sub: script.sub ?? 'alice',
    });
    const back = new URL(payload.return_to);
    back.searchParams.set('login_response', response);
    return back;
  }
}

/**
 * An authorization request at the server's authorization endpoint: response_type=code, PKCE S256 derived
 * from `verifier` (RFC 7636 §4.2), and the client's own parameters (client_id, redirect_uri, state…).
 */
export function authorizationRequest(
  as: { authorization_endpoint?: string },
  verifier: string,
  params: Record<string, string>,
): Promise<URL> {
  if (!as.authorization_endpoint) return Promise.reject(new Error('the metadata names no authorization_endpoint'));
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    ...params,
    code_challenge: challengeOf(verifier),
    code_challenge_method: 'S256',
  }).toString();
  return Promise.resolve(url);
}
