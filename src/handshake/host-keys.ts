import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  type CompactVerifyGetKey,
  type CryptoKey,
  type JWK,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  importJWK,
  importSPKI,
} from 'jose';
import type { Config } from '../config/index.js';
import { DomainError } from '../lib/errors.js';

/** Asymmetric algorithms a host may sign login_response with (RFC 7518 §3.1, RFC 8037). */
export const HOST_ASYMMETRIC_ALGS = ['ES256', 'RS256', 'EdDSA'] as const;
export type HostAsymmetricAlg = (typeof HOST_ASYMMETRIC_ALGS)[number];

/** How long a JWKS fetch may take before the sign-in fails as temporarily unavailable. */
const JWKS_TIMEOUT_MS = 5000;
/** Least time between two JWKS refetches caused by an unknown kid (limits what a forged kid can trigger). */
const JWKS_COOLDOWN_MS = 30_000;
/** Longest time a fetched host JWKS is trusted before it is fetched again. */
const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;

/** The key material that verifies login_response, and the only algorithms it may be used with. */
export interface HostKeys {
  readonly source: 'secret' | 'public-key-file' | 'jwks-url';
  /**
   * RFC 8725 §3.1: an explicit allow-list. HS256 appears only with a shared secret and the asymmetric
   * algorithms only with public keys, so a token MACed with a public key (alg confusion) never verifies.
   */
  readonly algorithms: readonly string[];
  readonly key: Uint8Array | CryptoKey | CompactVerifyGetKey;
}

/** The host's JWKS could not be fetched (network, timeout, bad document): a 503, not the host's fault or the user's. */
export class HostKeysUnavailable extends DomainError {
  constructor(cause: unknown) {
    // The fetch error names the host's URL and network details: the operator's, not the browser's.
    super('unavailable', "the host app's keys could not be fetched", {
      cause,
      detail: cause instanceof Error ? cause.message : String(cause),
    });
  }
}

/** A host key configuration that cannot work; stops startup. */
export class HostKeyConfigurationError extends DomainError {
  constructor(message: string) {
    super('misconfigured', message, { field: 'HOST_PUBLIC_KEY_FILE' });
  }
}

function isHostAlg(alg: unknown): alg is HostAsymmetricAlg {
  return typeof alg === 'string' && (HOST_ASYMMETRIC_ALGS as readonly string[]).includes(alg);
}

/** The algorithm a public key is used with, from its type: P-256 -> ES256, RSA -> RS256, Ed25519 -> EdDSA. */
function algorithmOfKeyType(kty: string | undefined, crv: string | undefined): HostAsymmetricAlg | null {
  if (kty === 'EC' && crv === 'P-256') return 'ES256';
  if (kty === 'RSA') return 'RS256';
  if (kty === 'OKP' && crv === 'Ed25519') return 'EdDSA';
  return null;
}

async function importJwkFile(jwk: JWK, file: string): Promise<HostKeys> {
  if ('d' in jwk || 'k' in jwk)
    throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} must hold a public key only`);
  const inferred = algorithmOfKeyType(jwk.kty, jwk.crv);
  const alg = jwk.alg ?? inferred;
  if (!isHostAlg(alg) || inferred === null) {
    throw new HostKeyConfigurationError(
      `HOST_PUBLIC_KEY_FILE: ${file} must be an EC P-256 (ES256), RSA (RS256) or Ed25519 (EdDSA) public key`,
    );
  }
  if (alg !== inferred)
    throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} says alg ${alg} but holds a ${jwk.kty} key`);
  const key = await importJWK({ ...jwk, alg }, alg);
  if (key instanceof Uint8Array)
    throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} must hold a public key`);
  return { source: 'public-key-file', algorithms: [alg], key };
}

async function importPemFile(pem: string, file: string): Promise<HostKeys> {
  let kty: string | undefined;
  let crv: string | undefined;
  try {
    const parsed = createPublicKey({ key: pem, format: 'pem' });
    if (parsed.type !== 'public') throw new Error('not a public key');
    const jwk = parsed.export({ format: 'jwk' });
    kty = jwk.kty;
    crv = jwk.crv;
  } catch {
    throw new HostKeyConfigurationError(
      `HOST_PUBLIC_KEY_FILE: ${file} is not a PEM public key (SPKI, "BEGIN PUBLIC KEY")`,
    );
  }
  const alg = algorithmOfKeyType(kty, crv);
  if (!alg)
    throw new HostKeyConfigurationError(
      `HOST_PUBLIC_KEY_FILE: ${file} must be an EC P-256 (ES256), RSA (RS256) or Ed25519 (EdDSA) public key`,
    );
  if (!pem.includes('BEGIN PUBLIC KEY'))
    throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} must be PEM SPKI ("BEGIN PUBLIC KEY")`);
  return { source: 'public-key-file', algorithms: [alg], key: await importSPKI(pem, alg) };
}

/** Reads HOST_PUBLIC_KEY_FILE once: a PEM SPKI public key, a public JWK, or a JWK Set of public keys. */
export async function loadHostPublicKeyFile(file: string): Promise<HostKeys> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new HostKeyConfigurationError(
      `HOST_PUBLIC_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return importPemFile(trimmed, file);
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} is not valid JSON`);
  }
  const set = json as { keys?: unknown };
  if (Array.isArray(set.keys)) {
    for (const k of set.keys as JWK[]) {
      if (k && typeof k === 'object' && ('d' in k || 'k' in k))
        throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} must hold public keys only`);
    }
    try {
      return {
        source: 'public-key-file',
        algorithms: HOST_ASYMMETRIC_ALGS,
        key: createLocalJWKSet(set as { keys: JWK[] }),
      };
    } catch {
      throw new HostKeyConfigurationError(`HOST_PUBLIC_KEY_FILE: ${file} is not a valid JWK Set`);
    }
  }
  return importJwkFile(json as JWK, file);
}

/** Wraps a remote JWKS so a failed fetch is told apart from a token no published key matches. */
function remoteKeys(url: string): CompactVerifyGetKey {
  const jwks = createRemoteJWKSet(new URL(url), {
    timeoutDuration: JWKS_TIMEOUT_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
    cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
  });
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      throw new HostKeysUnavailable(err);
    }
  };
}

/**
 * The host key from the configuration (exactly one source, enforced by config validation): the
 * HS256 secret, the public key file (read now, once) or the JWKS URL (fetched on first use, cached).
 * Null when no host is configured.
 */
export async function loadHostKeys(config: Pick<Config, 'handshake'>): Promise<HostKeys | null> {
  const h = config.handshake;
  if (h.secret !== '') return { source: 'secret', algorithms: ['HS256'], key: new TextEncoder().encode(h.secret) };
  if (h.hostPublicKeyFile !== '') return loadHostPublicKeyFile(h.hostPublicKeyFile);
  if (h.hostJwksUrl !== '')
    return { source: 'jwks-url', algorithms: HOST_ASYMMETRIC_ALGS, key: remoteKeys(h.hostJwksUrl) };
  return null;
}
