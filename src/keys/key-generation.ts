import { createPrivateKey, type JsonWebKey } from 'node:crypto';
import { type CryptoKey, type JWK, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { SigningAlg } from '../config/index.js';
import { publicPart } from './public-jwk.js';
import { preparePrivateKey } from '../oauth/tokens/jws.js';

/** A freshly generated key pair as JWKs, named by its RFC 7638 thumbprint. */
export interface GeneratedKey {
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  /** Includes the private members: encrypt before storing, never log. */
  privateJwk: JWK;
}

function generationOptions(alg: SigningAlg): { extractable: true; modulusLength?: number; crv?: string } {
  if (alg === 'RS256' || alg === 'PS256') return { extractable: true, modulusLength: 2048 };
  if (alg === 'EdDSA') return { extractable: true, crv: 'Ed25519' };
  return { extractable: true };
}

/** Generates a signing key pair for `alg` (RSA 2048-bit, P-256, Ed25519); kid = RFC 7638 thumbprint. */
export async function generateSigningKey(alg: SigningAlg): Promise<GeneratedKey> {
  // Extractable so the private key can be encrypted into the database.
  const { privateKey, publicKey } = await generateKeyPair(alg, generationOptions(alg));
  const publicJwk = publicPart(await exportJWK(publicKey));
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return { kid, alg, publicJwk, privateJwk };
}

/** Imports a private JWK for signing only: not extractable, so it cannot be exported again. */
export async function importSigningKey(privateJwk: JWK, alg: string): Promise<CryptoKey> {
  const { ext: _ext, key_ops: _ops, ...jwk } = privateJwk;
  const key = (await importJWK(jwk, alg, { extractable: false })) as CryptoKey;
  // The synchronous signer (oauth/tokens/jws.ts) signs with a node:crypto KeyObject: made here from the JWK,
  // since converting a non-extractable CryptoKey into one is deprecated (Node 24, DEP0204).
  preparePrivateKey(key, alg, createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }));
  return key;
}
