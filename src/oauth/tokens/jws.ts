import { type SignKeyObjectInput, constants, KeyObject, sign } from 'node:crypto';
import type { CryptoKey } from 'jose';

/** A private signing key as the key store holds it: a WebCrypto CryptoKey (jose's import) or a node:crypto KeyObject. */
export type PrivateSigningKey = CryptoKey | KeyObject;

interface PreparedKey {
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
