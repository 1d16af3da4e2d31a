import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Config, issuerIsHttps } from '../config/index.js';
import { generateToken, hashSecret, isOpaqueToken, verifySecret } from './secrets.js';

/**
 * The browser-binding cookie ties a pending authorization request to the browser that started it, so a
 * signed-in answer (or a consent decision) cannot be pushed into another browser (DESIGN: handshake step 3).
 */
export function cookieName(config: Pick<Config, 'issuer'>, base: string): string {
  // `__Host-` needs Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2): only over https.
  return issuerIsHttps(config) ? `__Host-${base}` : base;
}

/** Options every Gatehouse cookie shares: HttpOnly, SameSite=Lax, Secure over https, Path=/. */
export function cookieOptions(config: Pick<Config, 'issuer'>, maxAgeSeconds: number) {
  return { httpOnly: true, sameSite: 'lax' as const, secure: issuerIsHttps(config), path: '/', maxAge: maxAgeSeconds };
}

const BINDING = 'gatehouse_bind';

/**
 * Binds a new pending request to this browser and returns the hash to store on its row. A browser that
 * already holds a binding keeps it (its lifetime renewed), so flows started in several tabs, or a silent
 * request while a sign-in is under way, do not unbind each other; a browser without one gets a fresh
 * 256-bit value. The cookie is HttpOnly and, over https, `__Host-`: no other site or subdomain can set it.
 */
export function issueBinding(
  request: FastifyRequest,
  reply: FastifyReply,
  config: Pick<Config, 'issuer' | 'flow'>,
): string {
  const held = request.cookies[cookieName(config, BINDING)];
  const value = typeof held === 'string' && isOpaqueToken(held) ? held : generateToken();
  reply.setCookie(cookieName(config, BINDING), value, cookieOptions(config, config.flow.requestTtl));
  return hashSecret(value);
}

/** Whether this browser holds the binding cookie whose hash is stored on the pending request (constant time). */
export function hasBinding(request: FastifyRequest, config: Pick<Config, 'issuer'>, bindingHash: string): boolean {
  const value = request.cookies[cookieName(config, BINDING)];
  return typeof value === 'string' && value !== '' && verifySecret(value, bindingHash);
}
