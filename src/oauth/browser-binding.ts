import { type Config, issuerIsHttps } from '../config/index.js';
import { generateToken, hashSecret, isOpaqueToken, verifySecret } from './secrets.js';

/** The attributes of a Gatehouse cookie (see cookieOptions). */
export interface CookieOptions {
  httpOnly: true;
  sameSite: 'lax';
  secure: boolean;
  path: '/';
  maxAge: number;
}

/**
 * A cookie to set (`value`) or clear (`value: null`) on the reply: services and protocol code describe
 * cookies, the edge sets them.
 */
export interface CookieInstruction {
  name: string;
  value: string | null;
  options: CookieOptions;
}

/** The cookies a browser sent, by name (what the edge parsed). */
export type CookieJar = Readonly<Record<string, string | undefined>>;

/**
 * A Gatehouse cookie's name: `__Host-` needs Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2), so the
 * prefix is used only over https.
 */
export function cookieName(config: Pick<Config, 'issuer'>, base: string): string {
  return issuerIsHttps(config) ? `__Host-${base}` : base;
}

/** Options every Gatehouse cookie shares: HttpOnly, SameSite=Lax, Secure over https, Path=/. */
export function cookieOptions(config: Pick<Config, 'issuer'>, maxAgeSeconds: number): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', secure: issuerIsHttps(config), path: '/', maxAge: maxAgeSeconds };
}

const BINDING = 'gatehouse_bind';

/** The name of the browser-binding cookie. */
export function bindingCookieName(config: Pick<Config, 'issuer'>): string {
  return cookieName(config, BINDING);
}

/**
 * The browser-binding cookie ties a pending authorization request to the browser that started it, so a
 * signed-in answer (or a consent decision) cannot be pushed into another browser (docs/handshake.md,
 * step 3). Binds a new pending request to this browser: returns the hash to store on its row and the
 * cookie to set. A browser that already holds a binding (`held`) keeps it (its lifetime renewed), so
 * flows started in several tabs, or a silent request while a sign-in is under way, do not unbind each
 * other; a browser without one gets a fresh 256-bit value. The cookie is HttpOnly and, over https,
 * `__Host-`: no other site or subdomain can set it.
 */
export function issueBinding(
  held: string | undefined,
  config: Pick<Config, 'issuer' | 'flow'>,
): { hash: string; cookie: CookieInstruction } {
  const value = typeof held === 'string' && isOpaqueToken(held) ? held : generateToken();
  return {
    hash: hashSecret(value),
    cookie: { name: bindingCookieName(config), value, options: cookieOptions(config, config.flow.requestTtl) },
  };
}

/** Whether the browser's binding cookie value hashes to the one stored on the pending request (constant time). */
export function hasBinding(held: string | undefined, bindingHash: string): boolean {
  return typeof held === 'string' && held !== '' && verifySecret(held, bindingHash);
}
