import { type SignKeyObjectInput, constants, createPublicKey, KeyObject, sign, verify } from 'node:crypto';
import type { CryptoKey } from 'jose';
import type { JwkSet } from '../../keys/signing-key.js';
import { isSigningAlg } from '../../keys/public-jwk.js';

/** A private signing key as the key store holds it: a WebCrypto CryptoKey (jose's import) or a node:crypto KeyObject. */
export type PrivateSigningKey = CryptoKey | KeyObject;

interface PreparedKey {
  /** The one JWS algorithm this key was prepared for. */
  alg: string;
  /** node:crypto's digest name, or null where the algorithm has its own (Ed25519). */
  digest: string | null;
  input: SignKeyObjectInput;
  /** Encoded protected headers by their JSON: the same few headers are signed over and over. */
  headers: Map<string, string>;
}

const prepared = new WeakMap<object, PreparedKey>();

/**
 * The node:crypto form of a JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1): ECDSA signatures as the fixed-size
 * R‖S concatenation JWS requires (RFC 7518 §3.4, `ieee-p1363`, not DER), RSASSA-PSS with a salt as long as
 * the hash (§3.5).
 */
function prepare(alg: string, key: PrivateSigningKey): PreparedKey {
  const keyObject = key instanceof KeyObject ? key : KeyObject.from(key);
  return { alg, ...forAlgorithm(alg, keyObject) };
}

function forAlgorithm(alg: string, keyObject: KeyObject): Omit<PreparedKey, 'alg'> {
  switch (alg) {
    case 'ES256':
      return { digest: 'sha256', input: { key: keyObject, dsaEncoding: 'ieee-p1363' }, headers: new Map() };
    case 'ES384':
      return { digest: 'sha384', input: { key: keyObject, dsaEncoding: 'ieee-p1363' }, headers: new Map() };
    case 'RS256':
      return { digest: 'sha256', input: { key: keyObject }, headers: new Map() };
    case 'PS256':
      return {
        digest: 'sha256',
        input: { key: keyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        headers: new Map(),
      };
    case 'EdDSA':
      return { digest: null, input: { key: keyObject }, headers: new Map() };
    default:
      throw new Error(`unsupported JWS algorithm ${alg}`);
  }
}

/** Registers the KeyObject `signCompact` signs with for `key` (a WebCrypto key the store imported from the same JWK). */
export function preparePrivateKey(key: CryptoKey, alg: string, keyObject: KeyObject): void {
  prepared.set(key, prepare(alg, keyObject));
}

/** Most distinct protected headers remembered per key (a handful are ever used: at+jwt, ID token, logout token). */
const MAX_HEADERS = 16;

/**
 * A JWS Compact Serialization (RFC 7515 §7.1) of `payload`, signed synchronously with node:crypto. The bytes
 * are those jose's CompactSign produces for the same header and payload (base64url of the JSON, signature
 * over `header.payload`); signing on the main thread avoids WebCrypto's promise and thread-pool round trip,
 * about half the cost of a token on the token endpoint's profile.
 */
export function signCompact(
  key: PrivateSigningKey,
  header: { alg: string } & Record<string, unknown>,
  payload: object,
): string {
  let p = prepared.get(key);
  if (!p) {
    p = prepare(header.alg, key);
    prepared.set(key, p);
  }
  // RFC 8725 §3.1: a key signs with the one algorithm it was prepared for, whatever a header says.
  if (p.alg !== header.alg) throw new Error(`unsupported JWS algorithm ${header.alg} for this ${p.alg} key`);
  const headerJson = JSON.stringify(header);
  let encodedHeader = p.headers.get(headerJson);
  if (encodedHeader === undefined) {
    encodedHeader = Buffer.from(headerJson).toString('base64url');
    if (p.headers.size < MAX_HEADERS) p.headers.set(headerJson, encodedHeader);
  }
  const signingInput = `${encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature = sign(p.digest, Buffer.from(signingInput), p.input);
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** Public keys by kid, each with the one algorithm it verifies (its JWKS `alg`): built once per published JWKS. */
export type VerificationKeys = ReadonlyMap<string, { alg: string; input: SignKeyObjectInput; digest: string | null }>;

/** Imports a published JWK Set's keys for `verifyCompact`; entries Gatehouse cannot have signed with are left out. */
export function verificationKeys(jwks: JwkSet): VerificationKeys {
  const out = new Map<string, { alg: string; input: SignKeyObjectInput; digest: string | null }>();
  for (const jwk of jwks.keys) {
    if (!isSigningAlg(jwk.alg)) continue;
    const { digest, input } = prepare(jwk.alg, createPublicKey({ key: { ...jwk }, format: 'jwk' }));
    out.set(jwk.kid, { alg: jwk.alg, input, digest });
  }
  return out;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** RFC 8725 §3.11 explicit typing: `at+jwt` and `application/at+jwt` name the same type (RFC 7515 §4.1.9). */
const normaliseTyp = (typ: string) => typ.toLowerCase().replace(/^application\//, '');

function decodeJson(segment: string): Record<string, unknown> | null {
  if (!BASE64URL.test(segment)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * Verifies a JWS Compact Serialization (RFC 7515 §5.2) synchronously against our own published keys: the
 * header names a `kid` we publish and exactly that key's `alg` (RFC 8725 §3.1: never `none` or HS*, never
 * an algorithm the key was not published for), no `crit` extension (§4.1.11: none is understood here), the
 * explicit `typ` asked for (RFC 8725 §3.11), and the signature verifies. The header and payload, or null.
 * Claims (iss, exp …) are the caller's to check.
 */
export function verifyCompact(
  token: string,
  keys: VerificationKeys,
  typ: string,
): { header: Record<string, unknown>; payload: Record<string, unknown> } | null {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second <= first + 1 || token.indexOf('.', second + 1) !== -1) return null;
  const header = decodeJson(token.slice(0, first));
  if (!header || typeof header.alg !== 'string' || typeof header.kid !== 'string') return null;
  if (header.crit !== undefined || header.b64 !== undefined) return null;
  if (typeof header.typ !== 'string' || normaliseTyp(header.typ) !== normaliseTyp(typ)) return null;
  const key = keys.get(header.kid);
  if (!key || key.alg !== header.alg) return null;
  const signature = token.slice(second + 1);
  if (signature === '' || !BASE64URL.test(signature)) return null;
  const signatureBytes = Buffer.from(signature, 'base64url');
  // One spelling per signature: base64url decoding ignores the spare bits of the last character, so without
  // this 16 texts of one ES256 token would verify (and each be remembered apart by the access-token verifier).
  if (signatureBytes.toString('base64url') !== signature) return null;
  let valid: boolean;
  try {
    valid = verify(key.digest, Buffer.from(token.slice(0, second)), key.input, signatureBytes);
  } catch {
    return null;
  }
  if (!valid) return null;
  const payload = decodeJson(token.slice(first + 1, second));
  return payload ? { header, payload } : null;
}
