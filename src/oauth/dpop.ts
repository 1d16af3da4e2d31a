import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { OAuthError } from './errors.js';

/**
 * RFC 9449 §4.3 step 5: the asymmetric algorithms a DPoP proof may use. Never `none` and never a MAC
 * (HS*): a proof must be verifiable with the public key it carries.
 */
export const DPOP_SIGNING_ALGS = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'RS256', 'PS256'] as const;

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** A compact JWS: three base64url parts (the last empty for alg none, refused by name below). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A proof's jti is bounded so the replay store stays cheap; 256 characters is far beyond any generator's. */
const MAX_JTI = 256;

/** What a checked proof tells the token endpoint. */
export interface DpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key (base64url): the `jkt` tokens are bound to. */
  jkt: string;
  jti: string;
  iat: number;
  /** The server nonce the proof carried, if any (RFC 9449 §8). */
  nonce: string | undefined;
}

/** Server-provided nonces (RFC 9449 §8): a fresh one to hand out, and whether a presented one is current. */
export interface DpopNonceSource {
  current(now: number): string;
  isValid(nonce: string, now: number): boolean;
}

/** What a proof is checked against: the request it came with, the time, and the server's policy. */
export interface DpopExpectation {
  /** The request's method (`htm`). */
  method: string;
  /** The endpoint's URL as the server publishes it (`htu`), without query or fragment. */
  url: string;
  /** Seconds since the epoch. */
  now: number;
  /** Seconds a proof is accepted after its iat. */
  maxAge: number;
  /** Tolerance either way, for clock differences. */
  skew: number;
  nonces: DpopNonceSource;
  /** Whether every proof must carry a current server nonce. */
  requireNonce: boolean;
  /** At a protected resource, the access token the proof must name in `ath` (RFC 9449 §4.3 step 12, §7). */
  accessToken?: string;
}

/** RFC 9449 §5: `invalid_dpop_proof`, 400, with what was wrong. */
export function invalidProof(description: string, detail?: string): OAuthError {
  return new OAuthError('invalid_dpop_proof', description, detail === undefined ? {} : { detail });
}

/** RFC 9449 §8: `use_dpop_nonce` with a fresh nonce in the `DPoP-Nonce` header. */
export function useNonce(description: string, nonce: string): OAuthError {
  return new OAuthError('use_dpop_nonce', description, { headers: { 'dpop-nonce': nonce } });
}

/**
 * The form `htu` and the server's URL are compared in: RFC 9449 §4.3 asks for the syntax- and scheme-based
 * normalisation of RFC 3986 §6.2.2 and §6.2.3 (case of scheme and host, default port, percent-encoding
 * case, dot segments), which the WHATWG URL parser applies, and ignores query and fragment. Null when
 * the value is not an absolute http(s) URL.
 */
export function normalisedHtu(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  const path = url.pathname.replace(/%[0-9a-f]{2}/gi, (escape) => escape.toUpperCase());
  return `${url.protocol}//${url.host}${path}`;
}

/** RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token's ASCII bytes. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/**
 * The one DPoP header value, or undefined when none was sent; more than one is refused (RFC 9449 §4.3
 * step 1). Node joins repeated headers with a comma, which no compact JWT contains (RFC 9110 §5.3).
 */
export function singleDpopHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value) || value.includes(',')) throw invalidProof('exactly one DPoP header is allowed');
  return value.trim();
}

function hasPrivateMembers(jwk: Record<string, unknown>): boolean {
  return PRIVATE_MEMBERS.some((member) => member in jwk);
}

/**
 * Checks a DPoP proof JWT (RFC 9449 §4.3) against the request it came with, without any I/O: form,
 * `typ`, algorithm, a public `jwk`, the signature by that key, the required claims, `htm`, `htu`, `iat`
 * within the window, and the server nonce. Whether its jti was seen before is the caller's to check (it
 * needs the database). Throws `invalid_dpop_proof` or `use_dpop_nonce`.
 */
export async function checkDpopProof(proof: string, expected: DpopExpectation): Promise<DpopProof> {
  // §4.3 step 2: a single well-formed JWT.
  if (!COMPACT_JWS.test(proof)) throw invalidProof('the DPoP proof is not a JWT');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw invalidProof('the DPoP proof header is not valid JSON');
  }
  // §4.3 step 4.
  if (header.typ !== 'dpop+jwt') throw invalidProof('the DPoP proof typ must be dpop+jwt');
  // §4.3 step 5: asymmetric, not none, in the server's list.
  if (typeof header.alg !== 'string' || !(DPOP_SIGNING_ALGS as readonly string[]).includes(header.alg))
    throw invalidProof(`the DPoP proof alg must be one of ${DPOP_SIGNING_ALGS.join(', ')}`);
  // §4.3 step 7: the jwk header is a public key; a private (or symmetric) key there is refused outright.
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk))
    throw invalidProof('the DPoP proof has no jwk header');
  if (hasPrivateMembers(jwk)) throw invalidProof('the DPoP proof jwk must be a public key, without private members');

  let payload: Record<string, unknown>;
  try {
    // §4.3 step 6: the signature verifies with the key in the jwk header.
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: [...DPOP_SIGNING_ALGS],
      // The iat window is checked below with its own bounds; jose must not reject on exp/nbf it finds.
      currentDate: new Date(expected.now * 1000),
    }));
  } catch (err) {
    if (err instanceof errors.JWSSignatureVerificationFailed)
      throw invalidProof('the DPoP proof signature does not verify with its jwk');
    if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired)
      throw invalidProof(`the DPoP proof has an invalid ${err.claim} claim`);
    throw invalidProof('the DPoP proof jwk or signature is invalid', err instanceof Error ? err.message : undefined);
  }

  // §4.2 / §4.3 step 3: the required claims.
  const { jti, htm, htu, iat, nonce, ath } = payload;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI)
    throw invalidProof('the DPoP proof must have a jti claim (a string of at most 256 characters)');
  if (typeof htm !== 'string') throw invalidProof('the DPoP proof must have an htm claim');
  if (typeof htu !== 'string') throw invalidProof('the DPoP proof must have an htu claim');
  if (typeof iat !== 'number' || !Number.isFinite(iat))
    throw invalidProof('the DPoP proof must have a numeric iat claim');
  if (nonce !== undefined && typeof nonce !== 'string') throw invalidProof('the DPoP proof nonce must be a string');

  // §4.3 step 8: the method of this request.
  if (htm !== expected.method) throw invalidProof(`the DPoP proof htm must be ${expected.method}`);
  // §4.3 step 9: this endpoint's URL, query and fragment ignored, both normalised (RFC 3986 §6.2.2, §6.2.3).
  const actual = normalisedHtu(htu);
  if (actual === null || actual !== normalisedHtu(expected.url))
    throw invalidProof(`the DPoP proof htu must be ${expected.url}`);
  // §4.3 step 11: created within the accepted window (and not in the future beyond the skew).
  if (iat > expected.now + expected.skew || iat < expected.now - expected.maxAge - expected.skew)
    throw invalidProof('the DPoP proof iat is outside the accepted window; create a new proof');
  // §4.3 step 10 and §8: a nonce, when one is required or presented, is one this server issued recently.
  if (nonce !== undefined && !expected.nonces.isValid(nonce, expected.now))
    throw useNonce(
      'the DPoP nonce is not current; use the one in the DPoP-Nonce header',
      expected.nonces.current(expected.now),
    );
  if (nonce === undefined && expected.requireNonce)
    throw useNonce(
      'a DPoP nonce is required; use the one in the DPoP-Nonce header',
      expected.nonces.current(expected.now),
    );

  // §4.3 step 12, §7.1: presented with an access token, the proof names that token by its hash.
  if (expected.accessToken !== undefined && ath !== accessTokenHash(expected.accessToken))
    throw invalidProof('the DPoP proof ath must be the hash of the access token it is sent with');

  const thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
  return { jkt: thumbprint, jti, iat, nonce };
}

/** What the replay store keeps for a proof: SHA-256 of its key and jti (RFC 9449 §11.1), never the proof. */
export function proofReplayKey(proof: Pick<DpopProof, 'jkt' | 'jti'>): string {
  return createHash('sha256').update(`${proof.jkt}\u0000${proof.jti}`).digest('base64url');
}

/** RFC 7638 SHA-256 thumbprint form: the 43 base64url characters a `dpop_jkt` parameter must have (RFC 9449 §10). */
export const JKT_FORM = /^[A-Za-z0-9_-]{43}$/;
