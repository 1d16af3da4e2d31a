import type { Kysely, Transaction } from 'kysely';
import type { Config } from '../../config/index.js';
import type { Database } from '../../db/database.js';
import type { SigningKeyRow, SigningKeyState } from '../../db/tables/signing-key.table.js';
import {
  activateSigningKey,
  findActiveSigningKey,
  findNextSigningKey,
  findSigningKey,
  insertSigningKey,
  retireSigningKey,
  withSigningKeyLock,
} from '../../repositories/signing-key.repository.js';
import { KeyOperationError } from '../../keys/errors.js';
import type { KeyCipher } from '../../keys/key-encryption.js';
import { generateSigningKey } from '../../keys/key-generation.js';
import type { Clock } from '../../lib/clock.js';

/** What the key lifecycle needs: the database, the lock name, the cipher, settings and a clock. */
export interface RotationContext {
  db: Kysely<Database>;
  lockName: string;
  cipher: KeyCipher;
  config: Readonly<Pick<Config, 'keys' | 'tokens'>>;
  now: Clock;
}

/** What a lifecycle step changed, for the log. */
export interface KeyChange {
  activated?: string;
  /** A next key published by automatic rotation, signing from its activate_at. */
  scheduled?: string;
  retired?: string;
  generated?: string;
}

/**
 * When a key retired at `at` may leave the JWKS: after every token it signed has expired, counting
 * replicas whose cache still signed with it for up to one cache period after the retirement.
 */
export function retiredKeyExpiry(config: RotationContext['config'], at: Date): Date {
  const { accessTokenTtl, clockSkew } = config.tokens;
  return new Date(at.getTime() + (accessTokenTtl + clockSkew + config.keys.cacheTtl) * 1000);
}

async function insertGeneratedKey(
  ctx: RotationContext,
  trx: Transaction<Database>,
  state: SigningKeyState,
  now: Date,
  activateAt: Date,
): Promise<SigningKeyRow> {
  const key = await generateSigningKey(ctx.config.keys.signingAlg);
  return insertSigningKey(trx, {
    kid: key.kid,
    alg: key.alg,
    public_jwk: JSON.stringify(key.publicJwk),
    private_key_enc: ctx.cipher.encrypt(key.kid, JSON.stringify(key.privateJwk)),
    state,
    created_at: now,
    activate_at: activateAt,
    activated_at: state === 'active' ? now : null,
    retired_at: null,
    expires_at: null,
  });
}

/** Retires the active key (if any) and makes `next` sign from `now`; inside the caller's lock. */
async function handOver(
  trx: Transaction<Database>,
  next: SigningKeyRow,
  now: Date,
  retiredExpiresAt: Date,
): Promise<KeyChange> {
  const active = await findActiveSigningKey(trx);
  // Retire first: the partial unique index allows one active row at any instant.
  if (active) await retireSigningKey(trx, active.kid, now, retiredExpiresAt);
  await activateSigningKey(trx, next.kid, now);
  return { activated: next.kid, ...(active ? { retired: active.kid } : {}) };
}

/**
 * When automatic rotation publishes the next key for an active key that started signing at
 * `activatedAt`: KEY_ROTATION_DELAY_SECONDS before its KEY_ROTATION_INTERVAL_SECONDS are up, so the next
 * key signs exactly when the interval ends. Null when automatic rotation is off.
 */
export function autoRotationDue(config: RotationContext['config'], activatedAt: Date): Date | null {
  const { rotationInterval, rotationDelay } = config.keys;
  if (rotationInterval === 0) return null;
  return new Date(activatedAt.getTime() + (rotationInterval - rotationDelay) * 1000);
}

/**
 * Brings the table to a state with exactly one active key: promotes a due `next` key (retiring the
 * old active one), or with no active key at all promotes any pending key or generates one. With
 * automatic rotation on, an active key whose interval is nearly up gets its successor published now,
 * signing from the end of the interval (at least KEY_ROTATION_DELAY_SECONDS away). Under the key lock,
 * so replicas reaching the same moment add one key between them.
 */
export async function settleKeys(ctx: RotationContext): Promise<KeyChange> {
  return withSigningKeyLock(ctx.db, ctx.lockName, async (trx) => {
    const now = ctx.now();
    const next = await findNextSigningKey(trx);
    const active = await findActiveSigningKey(trx);
    if (next && (!active || (next.activate_at !== null && next.activate_at <= now))) {
      return handOver(trx, next, now, retiredKeyExpiry(ctx.config, now));
    }
    if (active) {
      const due = active.activated_at ? autoRotationDue(ctx.config, active.activated_at) : null;
      if (next || due === null || due > now) return {};
      const activateAt = Math.max(
        now.getTime() + ctx.config.keys.rotationDelay * 1000,
        due.getTime() + ctx.config.keys.rotationDelay * 1000,
      );
      const row = await insertGeneratedKey(ctx, trx, 'next', now, new Date(activateAt));
      return { generated: row.kid, scheduled: row.kid };
    }
    const row = await insertGeneratedKey(ctx, trx, 'active', now, now);
    return { generated: row.kid, activated: row.kid };
  });
}

/** Adds a `next` key, published now and signing from now + KEY_ROTATION_DELAY_SECONDS. */
export async function addNextKey(ctx: RotationContext): Promise<SigningKeyRow> {
  return withSigningKeyLock(ctx.db, ctx.lockName, async (trx) => {
    const pending = await findNextSigningKey(trx);
    if (pending) {
      throw new KeyOperationError(
        'conflict',
        `key ${pending.kid} is already waiting to sign from ${pending.activate_at?.toISOString()}; retire it first to rotate again`,
      );
    }
    const now = ctx.now();
    return insertGeneratedKey(ctx, trx, 'next', now, new Date(now.getTime() + ctx.config.keys.rotationDelay * 1000));
  });
}

/**
 * Retires a key. A pending next key is withdrawn; a retired one can be pulled from the JWKS at once.
 * The active key is retired only `immediately` (a compromised key): signing then passes at once to the
 * pending next key or to a new one, and the old key leaves the JWKS now. Otherwise it is refused: a key
 * must be published before it signs (verifiers cache the JWKS), so the way to replace a healthy active
 * key is `rotate`, after which it retires by itself when the next key takes over.
 */
export async function retireKey(ctx: RotationContext, kid: string, immediately: boolean): Promise<KeyChange> {
  return withSigningKeyLock(ctx.db, ctx.lockName, async (trx) => {
    const now = ctx.now();
    const row = await findSigningKey(trx, kid);
    if (!row) throw new KeyOperationError('not_found', `no signing key with kid ${kid}`);
    const expiresAt = immediately ? now : retiredKeyExpiry(ctx.config, now);
    if (row.state === 'next') {
      // It never signed anything, so nothing needs it published any longer.
      await retireSigningKey(trx, kid, now, now);
      return { retired: kid };
    }
    if (row.state === 'retired') {
      await retireSigningKey(trx, kid, now, expiresAt);
      return { retired: kid };
    }
    const next = await findNextSigningKey(trx);
    if (!immediately) {
      throw new KeyOperationError(
        'conflict',
        next
          ? `${kid} is the active key; it retires by itself when ${next.kid} signs from ${next.activate_at?.toISOString()}. Retire it immediately only if it is compromised`
          : `${kid} is the active key: rotate first (the next key is published now and takes over after the rotation delay, then this one retires), or retire it immediately if it is compromised`,
      );
    }
    if (next) return handOver(trx, next, now, expiresAt);
    await retireSigningKey(trx, kid, now, expiresAt);
    const fresh = await insertGeneratedKey(ctx, trx, 'active', now, now);
    return { retired: kid, generated: fresh.kid, activated: fresh.kid };
  });
}
