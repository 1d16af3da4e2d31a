import { decodeJwt, decodeProtectedHeader, errors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { DomainError } from '../lib/errors.js';
import type { Client } from './client.js';
import { ASSERTION_ALGS, type AssertionAlg, FAPI2_ASSERTION_ALGS } from './client-metadata.js';

/** RFC 7523 §2.2: the client_assertion_type of a JWT client assertion. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Why a client assertion was refused. Never sent: the client gets the one invalid_client answer every
 * failed authentication gets; the reason goes to the log as the error's detail.
 */
export class ClientAssertionRefused extends DomainError {
  constructor(reason: string) {
    super('invalid_input', reason);
  }
}

/** What an assertion is checked against. */
export interface AssertionRules {
  /** The issuer identifier: the one audience accepted. */
  issuer: string;
  /** Longest lifetime accepted, in seconds: exp at most this far after iat (or after now without iat). */
  maxLifetime: number;
  /** Clock skew tolerated on exp, nbf and iat, in seconds. */
  clockSkew: number;
  now: Date;
}

/** A verified assertion: what replay protection records. */
export interface VerifiedAssertion {
  jti: string;
  /** exp, as a Date. */
  expiresAt: Date;
}

/** The algorithms a client's assertions may use: its registered one, within the profile's list. */
export function allowedAssertionAlgs(
  client: Pick<Client, 'token_endpoint_auth_signing_alg' | 'security_profile'>,
): AssertionAlg[] {
  const base: readonly AssertionAlg[] = client.security_profile === 'fapi2' ? FAPI2_ASSERTION_ALGS : ASSERTION_ALGS;
  const registered = client.token_endpoint_auth_signing_alg as AssertionAlg | null;
  return registered === null ? [...base] : base.filter((alg) => alg === registered);
}

/**
 * The client an assertion names (RFC 7523 §3: iss and sub are both its client_id), read before any
 * verification so the client's keys can be found; undefined when it is not a JWT naming one client.
 */
export function assertionClientId(assertion: string): string | undefined {
  try {
    const { iss, sub } = decodeJwt(assertion);
    return typeof iss === 'string' && iss !== '' && iss === sub ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a private_key_jwt client assertion (RFC 7523 §3, OpenID Connect Core §9) for `client` with
 * the keys `getKey` resolves: an asymmetric allowed algorithm, the signature, iss = sub = client_id,
 * aud = the issuer as its sole value, exp present and not too far ahead, nbf and iat if present, jti
 * present. Throws ClientAssertionRefused naming the rule; replay (jti already seen) is the caller's.
 */
export async function verifyClientAssertion(
  assertion: string,
  client: Pick<Client, 'client_id' | 'token_endpoint_auth_signing_alg' | 'security_profile'>,
  getKey: JWTVerifyGetKey,
  rules: AssertionRules,
): Promise<VerifiedAssertion> {
  const algorithms = allowedAssertionAlgs(client);
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(assertion).alg;
  } catch {
    throw new ClientAssertionRefused('the client assertion is not a JWS');
  }
  // RFC 7515 §4.1.1 and RFC 8725 §3.1: the algorithm comes from an allow-list, never from the token.
  if (typeof alg !== 'string' || !(algorithms as string[]).includes(alg))
    throw new ClientAssertionRefused(`alg ${String(alg).slice(0, 20)} is not allowed for this client`);
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, getKey, {
      algorithms,
      issuer: client.client_id,
      subject: client.client_id,
      currentDate: rules.now,
      clockTolerance: rules.clockSkew,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    if (err instanceof errors.JOSEError) throw new ClientAssertionRefused(`${err.code}: ${err.message}`);
    throw err;
  }
  // draft-ietf-oauth-rfc7523bis: the issuer identifier is the sole audience. The token endpoint URL is
  // refused on purpose: an assertion made for one server's token endpoint (named in a metadata document
  // an attacker controlled) must not be usable at another (the audience injection attack).
  const aud = payload.aud;
  const sole = Array.isArray(aud) ? (aud.length === 1 ? aud[0] : undefined) : aud;
  if (sole !== rules.issuer) throw new ClientAssertionRefused('aud is not the issuer identifier alone');
  const nowSeconds = Math.floor(rules.now.getTime() / 1000);
  const exp = payload.exp!;
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 512)
    throw new ClientAssertionRefused('jti must be a non-empty string');
  // RFC 7523 §3: exp bounds the assertion's life; a short one bounds how long a stolen one is useful
  // and how long its jti must be remembered.
  if (payload.iat !== undefined) {
    if (payload.iat > nowSeconds + rules.clockSkew) throw new ClientAssertionRefused('iat is in the future');
    if (exp - payload.iat > rules.maxLifetime)
      throw new ClientAssertionRefused(`exp is more than ${rules.maxLifetime} s after iat`);
  }
  if (exp > nowSeconds + rules.maxLifetime + rules.clockSkew)
    throw new ClientAssertionRefused(`exp is more than ${rules.maxLifetime} s ahead`);
  return { jti: payload.jti, expiresAt: new Date(exp * 1000) };
}
