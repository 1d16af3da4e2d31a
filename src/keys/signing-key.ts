import type { CryptoKey } from 'jose';
import type { SigningAlg } from '../config/index.js';
import type { PublicJwk } from './public-jwk.js';

/** What signs tokens: the active key, its private part imported once per process. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly key: CryptoKey;
}

/** An RFC 7517 §5 JWK Set of public keys. */
export interface JwkSet {
  keys: PublicJwk[];
}
