import type { JWK } from 'jose';
import type { SigningAlg } from '../config/index.js';

/** The algorithms Gatehouse signs with. */
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'RS256', 'PS256', 'EdDSA'];

/** Whether `alg` is one Gatehouse signs with. */
export function isSigningAlg(alg: unknown): alg is SigningAlg {
  return typeof alg === 'string' && (SIGNING_ALGS as readonly string[]).includes(alg);
}

// RFC 7638 §3.2 and RFC 8037 §2: the members that make up a public key, by key type. Anything else
// (above all d, p, q, dp, dq, qi, oth) is never copied.
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
  RSA: ['kty', 'n', 'e'],
};

/** A published JWKS entry (RFC 7517 §4): public members only, plus kid, alg and use. */
export interface PublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  kid: string;
  alg: string;
  use: 'sig';
}

/** Copies only the public members of an asymmetric JWK, by an allow-list; throws for other key types. */
export function publicPart(jwk: Readonly<Record<string, unknown>>): JWK {
  const members = typeof jwk.kty === 'string' ? PUBLIC_MEMBERS[jwk.kty] : undefined;
  if (!members) throw new Error(`unsupported key type ${JSON.stringify(jwk.kty)}`);
  const out: Record<string, string> = {};
  for (const name of members) {
    const value = jwk[name];
    if (typeof value !== 'string' || value === '') throw new Error(`the ${String(jwk.kty)} key has no "${name}"`);
    out[name] = value;
  }
  return out;
}

/** The JWKS entry for a key; built from an allow-list, so a private member can never be published. */
export function jwksEntry(jwk: Readonly<Record<string, unknown>>, kid: string, alg: string): PublicJwk {
  return { ...(publicPart(jwk) as Omit<PublicJwk, 'kid' | 'alg' | 'use'>), kid, alg, use: 'sig' };
}
