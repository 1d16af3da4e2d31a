import { exportJWK, generateKeyPair } from 'jose';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** A client's signing key pair for private_key_jwt: the private CryptoKey it signs with and its public JWK. */
export interface ClientKey {
  privateKey: PrivateKey;
  jwk: Record<string, unknown>;
  kid: string;
}

/**
 * A fresh asymmetric key pair for `alg`, its public JWK carrying `kid` and `use: sig` (no `alg`: a client
 * signing with an Ed25519 key may name it EdDSA or Ed25519, RFC 9864).
 */
export async function clientKey(
  alg: 'ES256' | 'PS256' | 'RS256' | 'Ed25519' = 'ES256',
  kid = `k-${alg}`,
): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' }, kid };
}

/** A JWK Set of the public keys of `keys`. */
export function jwksOf(...keys: ClientKey[]): { keys: Array<Record<string, unknown>> } {
  return { keys: keys.map((k) => k.jwk) };
}
