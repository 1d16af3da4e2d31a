import { createHash } from 'node:crypto';
import { fillSecretBytes, TOKEN_BYTES } from '../secrets.js';

/**
 * Refresh tokens that name their chain, so a deleted generation is still recognised (docs/refresh-tokens.md).
 *
 * RFC 9700 §4.14.2: presenting a rotated refresh token again is reuse and revokes the chain. Keeping every
 * rotated generation's row for that would make the table grow with refreshes made, not with chains alive.
 * Instead, every token of a chain starts with the same 16-byte **chain tag** (CSPRNG), followed by 16 fresh
 * CSPRNG bytes per generation: 32 bytes, the same 43-character form as every opaque token. The chain's id
 * (`family_id`) is derived from the tag by a one-way hash, so:
 * - a token whose row was deleted still leads to its chain, and reuse of any past generation revokes it;
 * - only a holder of one of the chain's tokens knows the tag; a copy of the database (ids and token hashes)
 *   cannot produce one, so it cannot be used to revoke chains either;
 * - guessing the current token stays out of reach even for a holder of an old one (128 unknown bits, online
 *   only); for everyone else it is 256 bits, as before.
 * Chains started before tokens carried a tag keep a random id (no `.`): their generations are kept as they
 * always were, until the chain expires.
 */

/** Bytes of a token that name its chain; the rest is fresh for each generation. */
const TAG_BYTES = 16;
const LABEL = 'gatehouse refresh chain v1';
/** Every chain id derived from a tag starts with this; a random legacy id never contains a dot. */
export const TAGGED_CHAIN_PREFIX = 'c.';

/** The chain id a tag names: a one-way hash, so the stored id reveals nothing of the tag. */
function chainIdOfTag(tag: Buffer): string {
  return (
    TAGGED_CHAIN_PREFIX + createHash('sha256').update(LABEL).update(tag).digest().subarray(0, 16).toString('base64url')
  );
}

/** A new chain: its first refresh token and its id. */
export function newRefreshChain(): { token: string; familyId: string } {
  const raw = Buffer.alloc(TOKEN_BYTES);
  fillSecretBytes(raw);
  return { token: raw.toString('base64url'), familyId: chainIdOfTag(raw.subarray(0, TAG_BYTES)) };
}

/**
 * The next generation's token for a rotation of `presented`: the same tag, fresh bytes after it. (A legacy
 * chain's tokens get a tag too, but it names no chain, so its generations are never pruned.)
 */
export function nextRefreshToken(presented: string): string {
  const raw = Buffer.from(presented, 'base64url');
  const next = Buffer.alloc(TOKEN_BYTES);
  fillSecretBytes(next);
  if (raw.length === TOKEN_BYTES) raw.copy(next, 0, 0, TAG_BYTES);
  return next.toString('base64url');
}

/** The id of the chain a presented token names, if it has the form of a generated token; whether that chain exists is the database's to say. */
export function chainIdOf(presented: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{43}$/.test(presented)) return undefined;
  const raw = Buffer.from(presented, 'base64url');
  return raw.length === TOKEN_BYTES ? chainIdOfTag(raw.subarray(0, TAG_BYTES)) : undefined;
}
