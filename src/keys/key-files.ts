import { readFile } from 'node:fs/promises';
import {
  type CryptoKey,
  CompactSign,
  type JWK,
  calculateJwkThumbprint,
  compactVerify,
  exportJWK,
  importJWK,
  importPKCS8,
} from 'jose';
import type { SigningAlg } from '../config/index.js';
import { KeyConfigurationError } from './errors.js';
import { importSigningKey } from './key-generation.js';
import { isSigningAlg, publicPart } from './public-jwk.js';

/** A private key supplied in SIGNING_KEY_FILES, imported for signing. */
export interface FileKey {
  file: string;
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  privateKey: CryptoKey;
}

function fail(file: string, reason: string): never {
  throw new KeyConfigurationError(`SIGNING_KEY_FILES: ${file} ${reason}`);
}

/** Reads a PEM PKCS#8 key as a private JWK (with SIGNING_ALG), failing with the file's name. */
async function pemToJwk(file: string, pem: string, alg: SigningAlg): Promise<JWK> {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(pem))
    fail(file, 'is an encrypted PKCS#8 key; supply it unencrypted (protect the file instead)');
  if (/-----BEGIN (RSA|EC) PRIVATE KEY-----/.test(pem)) {
    fail(file, 'is a PKCS#1/SEC1 key; convert it with `openssl pkcs8 -topk8 -nocrypt -in <file>`');
  }
  if (!/-----BEGIN PRIVATE KEY-----/.test(pem)) fail(file, 'is neither a PEM PKCS#8 private key nor a JWK');
  try {
    return await exportJWK(await importPKCS8(pem, alg, { extractable: true }));
  } catch (err) {
    return fail(file, `is not a usable ${alg} private key (SIGNING_ALG): ${(err as Error).message}`);
  }
}

function parseJwk(file: string, text: string): JWK {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input, which here is a private key: never repeat it.
    return fail(file, 'is not valid JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) fail(file, 'is not a JWK object');
  return parsed;
}

/** Proves the private and public halves belong together under `alg` before anything is signed with them. */
async function selfTest(file: string, privateKey: CryptoKey, publicJwk: JWK, alg: SigningAlg): Promise<void> {
  try {
    const jws = await new CompactSign(new TextEncoder().encode('gatehouse key check'))
      .setProtectedHeader({ alg })
      .sign(privateKey);
    await compactVerify(jws, await importJWK(publicJwk, alg));
  } catch {
    fail(file, `holds a key whose public part does not verify its own ${alg} signature`);
  }
}

async function loadKeyFile(file: string, defaultAlg: SigningAlg): Promise<FileKey> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    return fail(file, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const isJwk = text.startsWith('{');
  const jwk = isJwk ? parseJwk(file, text) : await pemToJwk(file, text, defaultAlg);
  const alg = isJwk ? (jwk.alg ?? defaultAlg) : defaultAlg;
  if (!isSigningAlg(alg)) fail(file, `has alg ${JSON.stringify(alg)}; supported: ES256, RS256, PS256, EdDSA`);
  if (typeof jwk.d !== 'string') fail(file, 'holds no private key (the JWK has no "d")');
  if (jwk.use !== undefined && jwk.use !== 'sig') fail(file, `is for use ${JSON.stringify(jwk.use)}, not "sig"`);
  let publicJwk: JWK;
  let privateKey: CryptoKey;
  try {
    publicJwk = publicPart(jwk);
    privateKey = await importSigningKey(jwk, alg);
  } catch (err) {
    return fail(file, `is not a usable ${alg} private key: ${(err as Error).message}`);
  }
  await selfTest(file, privateKey, publicJwk, alg);
  const kid =
    isJwk && typeof jwk.kid === 'string' && jwk.kid !== ''
      ? jwk.kid
      : await calculateJwkThumbprint(publicJwk, 'sha256');
  return { file, kid, alg, publicJwk, privateKey };
}

/** Loads every key of SIGNING_KEY_FILES in order (the first signs); throws naming the first bad file. */
export async function loadKeyFiles(files: string, defaultAlg: SigningAlg): Promise<FileKey[]> {
  const paths = files
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (paths.length === 0) throw new KeyConfigurationError('SIGNING_KEY_FILES names no file');
  const keys: FileKey[] = [];
  for (const file of paths) {
    const key = await loadKeyFile(file, defaultAlg);
    const clash = keys.find((k) => k.kid === key.kid);
    if (clash) fail(file, `has the same kid (${key.kid}) as ${clash.file}`);
    keys.push(key);
  }
  return keys;
}
