import type { SigningKeyRow, SigningKeyState } from '../db/tables/signing-key.table.js';
import type { FileKey } from './key-files.js';

/** A key as `gatehouse keys list` shows it; never its private part. */
export interface KeyInfo {
  kid: string;
  alg: string;
  /** `published` is a SIGNING_KEY_FILES key after the first: in the JWKS, never signing. */
  state: SigningKeyState | 'published';
  source: 'database' | 'file';
  /** Whether the JWKS lists it now. */
  published: boolean;
  createdAt: Date | null;
  activateAt: Date | null;
  activatedAt: Date | null;
  retiredAt: Date | null;
  expiresAt: Date | null;
}

/** The outcome of `retire`: the retired key and the one that signs afterwards. */
export interface RetireResult {
  retired: KeyInfo;
  signing: KeyInfo | null;
}

/** A database key as the CLI shows it at `now`. */
export function rowInfo(row: SigningKeyRow, now: Date): KeyInfo {
  return {
    kid: row.kid,
    alg: row.alg,
    state: row.state,
    source: 'database',
    published: row.state !== 'retired' || (row.expires_at !== null && row.expires_at > now),
    createdAt: row.created_at,
    activateAt: row.activate_at,
    activatedAt: row.activated_at,
    retiredAt: row.retired_at,
    expiresAt: row.expires_at,
  };
}

/** A SIGNING_KEY_FILES key as the CLI shows it; the first one signs. */
export function fileInfo(key: FileKey, index: number): KeyInfo {
  return {
    kid: key.kid,
    alg: key.alg,
    state: index === 0 ? 'active' : 'published',
    source: 'file',
    published: true,
    createdAt: null,
    activateAt: null,
    activatedAt: null,
    retiredAt: null,
    expiresAt: null,
  };
}
