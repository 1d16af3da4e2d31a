import { type AuditSink, type ChangedBy, changedBy, noAudit } from '../audit/audit-log.js';
import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { BaseLogger } from 'pino';
import type { Config } from '../../config/index.js';
import type { DatabaseHandle } from '../../db/connect.js';
import type { Database } from '../../db/database.js';
import type { SigningKeyRow, SigningKeyState } from '../../db/tables/signing-key.table.js';
import { KeyConfigurationError, KeyOperationError } from '../../keys/errors.js';
import { KeyCipher, keyEncryptionSecret } from '../../keys/key-encryption.js';
import { type FileKey, loadKeyFiles } from '../../keys/key-files.js';
import { type KeyInfo, type RetireResult, fileInfo, rowInfo } from '../../keys/key-info.js';
import { importSigningKey } from '../../keys/key-generation.js';
import { type PublicJwk, isSigningAlg, jwksEntry } from '../../keys/public-jwk.js';
import type { JwkSet, SigningKey } from '../../keys/signing-key.js';
import { DomainError } from '../../lib/errors.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import { listPublishedSigningKeys, listSigningKeys } from '../../repositories/signing-key.repository.js';
import {
  type KeyChange,
  type RotationContext,
  addNextKey,
  autoRotationDue,
  retireKey,
  settleKeys,
} from './key-rotation.js';

export type { KeyInfo, RetireResult } from '../../keys/key-info.js';
export type { JwkSet, SigningKey } from '../../keys/signing-key.js';

export type KeyStoreLogger = Pick<BaseLogger, 'info' | 'warn' | 'error'>;

export interface KeyStoreOptions {
  /** The clock (tests move it); the system clock by default. */
  now?: Clock;
  /** Re-read keys and promote due ones every KEY_CACHE_TTL_SECONDS; on by default (the CLI turns it off). */
  background?: boolean;
  /**
   * Start even when the database cannot be read yet (down, migrations pending) and keep retrying;
   * `readiness()` reports the reason meanwhile. Configuration errors still throw.
   */
  retryUntilLoaded?: boolean;
  /** Where key changes (rotation, activation, retirement) are reported (docs/audit.md). */
  audit?: AuditSink;
}

const SYSTEM: ChangedBy = { actor: 'system' };
const OPERATOR: ChangedBy = { actor: 'admin' };

interface Snapshot {
  signer: SigningKey | null;
  jwks: JwkSet;
  /** The earliest activation of a pending key, so the refresh can wake up for it. */
  nextActivation: Date | null;
  /** When the signing key started signing (null for key files, or before a key is loaded). */
  activeSince: Date | null;
}

/** While no key is loaded the store retries sooner than the cache period. */
const UNLOADED_RETRY_MS = 5000;
const MIN_REFRESH_MS = 1000;

function freezeJwks(keys: PublicJwk[]): JwkSet {
  for (const key of keys) Object.freeze(key);
  return Object.freeze({ keys: Object.freeze(keys) as PublicJwk[] });
}

const STATE_ORDER: Record<SigningKeyState, number> = { active: 0, next: 1, retired: 2 };

function isHandle(source: DatabaseHandle | Kysely<Database>): source is DatabaseHandle {
  return 'root' in source && 'kind' in source;
}

/**
 * Whether the rows need the locked lifecycle step: no signing key, a pending key that is due, or (with
 * automatic rotation) an active key whose successor is due to be published.
 */
function needsSettling(rows: readonly SigningKeyRow[], now: Date, config: RotationContext['config']): boolean {
  const active = rows.find((r) => r.state === 'active');
  if (!active) return true;
  if (rows.some((r) => r.state === 'next' && r.activate_at !== null && r.activate_at <= now)) return true;
  if (rows.some((r) => r.state === 'next')) return false;
  const due = active.activated_at ? autoRotationDue(config, active.activated_at) : null;
  return due !== null && due <= now;
}

/**
 * The signing keys of this process: the active private key imported once, the JWKS built once per
 * refresh, both served synchronously. Keys live encrypted in Postgres (or come from SIGNING_KEY_FILES);
 * a background refresh picks up other replicas' rotations and promotes due keys.
 */
export class KeyStore {
  readonly #config: Readonly<Config>;
  readonly #log: KeyStoreLogger;
  readonly #now: Clock;
  readonly #rotation: RotationContext | null;
  readonly #files: readonly FileKey[];
  readonly #background: boolean;
  readonly #audit: AuditSink;
  #snapshot: Snapshot = { signer: null, jwks: freezeJwks([]), nextActivation: null, activeSince: null };
  #lastError: string | null = null;
  #queue: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(
    config: Readonly<Config>,
    log: KeyStoreLogger,
    options: KeyStoreOptions,
    rotation: RotationContext | null,
    files: readonly FileKey[],
  ) {
    this.#config = config;
    this.#log = log;
    this.#now = options.now ?? systemClock;
    this.#background = options.background ?? true;
    this.#audit = options.audit ?? noAudit;
    this.#rotation = rotation;
    this.#files = files;
  }

  /**
   * Loads the keys: from SIGNING_KEY_FILES when set, else from the database, generating the first
   * key on first start.
   */
  static async open(
    source: DatabaseHandle | Kysely<Database>,
    config: Readonly<Config>,
    logger: KeyStoreLogger,
    options: KeyStoreOptions = {},
  ): Promise<KeyStore> {
    if (config.keys.files.trim() !== '') {
      const files = await loadKeyFiles(config.keys.files, config.keys.signingAlg);
      const store = new KeyStore(config, logger, options, null, files);
      const [first] = files;
      store.#snapshot = {
        signer: first ? Object.freeze({ kid: first.kid, alg: first.alg, key: first.privateKey }) : null,
        jwks: freezeJwks(files.map((f) => jwksEntry(f.publicJwk as Record<string, unknown>, f.kid, f.alg))),
        nextActivation: null,
        activeSince: null,
      };
      logger.info({ kids: files.map((f) => f.kid) }, 'loaded signing keys from SIGNING_KEY_FILES');
      return store;
    }

    const rotation: RotationContext = {
      db: isHandle(source) ? source.db : source,
      lockName: `gatehouse.signing_keys.${config.database.schema}`,
      cipher: new KeyCipher(keyEncryptionSecret(config, logger)),
      config,
      now: options.now ?? systemClock,
    };
    const store = new KeyStore(config, logger, options, rotation, []);
    try {
      await store.refresh();
    } catch (err) {
      if (!options.retryUntilLoaded || err instanceof KeyConfigurationError) {
        await store.close();
        throw err;
      }
      store.#lastError = (err as Error).message;
      logger.warn({ err }, 'signing keys are not loaded yet; retrying');
    }
    store.#schedule();
    return store;
  }

  /** The key that signs now. Synchronous: no I/O, no allocation. */
  current(): SigningKey {
    const signer = this.#snapshot.signer;
    // The edge answers this 503 temporarily_unavailable (RFC 6749 §5.2): the store keeps retrying.
    if (!signer)
      throw new DomainError('unavailable', 'no signing key is loaded yet', { detail: this.readiness() ?? '' });
    return signer;
  }

  /** The public JWK Set: next, active, and retired keys whose tokens may still be valid. Frozen. */
  jwks(): JwkSet {
    return this.#snapshot.jwks;
  }

  /** When the key that signs now started signing, as last loaded; null for key files or before a load. */
  activeSince(): Date | null {
    return this.#snapshot.activeSince;
  }

  /** Null when a signing key is loaded, else why not. */
  readiness(): string | null {
    if (this.#snapshot.signer) return null;
    return this.#lastError ? `no signing key loaded: ${this.#lastError}` : 'no signing key loaded yet';
  }

  /** Re-reads the keys, promoting a due `next` key first. Calls run one after another. */
  refresh(): Promise<void> {
    if (!this.#rotation) return Promise.resolve();
    const run = this.#queue.catch(() => {}).then(() => this.#load());
    this.#queue = run;
    return run;
  }

  /** Adds a `next` key: published at once, signing after KEY_ROTATION_DELAY_SECONDS. */
  async rotate(by: ChangedBy = OPERATOR): Promise<KeyInfo> {
    const ctx = this.#requireDatabase('rotate');
    const row = await addNextKey(ctx);
    this.#log.info({ kid: row.kid, alg: row.alg, activateAt: row.activate_at }, 'added the next signing key');
    this.#audit.record({
      type: 'key.rotated',
      ...changedBy(by, {
        kid: row.kid,
        alg: row.alg,
        activate_at: row.activate_at?.toISOString() ?? null,
        trigger: 'manual',
      }),
    });
    await this.refresh();
    return rowInfo(row, ctx.now());
  }

  /**
   * Retires a key. Retiring the active key promotes the pending one now (or a new one); `immediately`
   * (compromise) removes it from the JWKS now rather than after the tokens it signed expire.
   */
  async retire(
    kid: string,
    { immediately = false, by = OPERATOR }: { immediately?: boolean; by?: ChangedBy } = {},
  ): Promise<RetireResult> {
    const ctx = this.#requireDatabase('retire');
    this.#logChange(await retireKey(ctx, kid, immediately), immediately, by);
    await this.refresh();
    const all = await this.list();
    const retired = all.find((k) => k.kid === kid);
    if (!retired) throw new KeyOperationError('conflict', `signing key ${kid} disappeared while being retired`);
    return { retired, signing: all.find((k) => k.state === 'active') ?? null };
  }

  /** Every key, oldest first, without private parts. */
  async list(): Promise<KeyInfo[]> {
    if (!this.#rotation) return this.#files.map(fileInfo);
    const now = this.#now();
    return (await listSigningKeys(this.#rotation.db)).map((row) => rowInfo(row, now));
  }

  /** Stops the background refresh and waits for one in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#queue.catch(() => {});
  }

  #requireDatabase(action: string): RotationContext {
    if (!this.#rotation) {
      throw new KeyOperationError(
        'conflict',
        `cannot ${action}: keys come from SIGNING_KEY_FILES; change the files and restart instead`,
      );
    }
    return this.#rotation;
  }

  async #load(): Promise<void> {
    const ctx = this.#rotation!;
    let rows = await listPublishedSigningKeys(ctx.db, this.#now());
    if (needsSettling(rows, this.#now(), ctx.config)) {
      this.#logChange(await settleKeys(ctx), false, SYSTEM);
      rows = await listPublishedSigningKeys(ctx.db, this.#now());
    }
    const active = rows.find((r) => r.state === 'active');
    if (!active) throw new Error('no active signing key in the database');
    const previous = this.#snapshot.signer;
    const signer = previous?.kid === active.kid ? previous : await this.#importPrivateKey(active);
    const published = [...rows].sort(
      (a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.created_at.getTime() - a.created_at.getTime(),
    );
    const pending = rows
      .filter((r) => r.state === 'next' && r.activate_at !== null)
      .map((r) => r.activate_at!.getTime());
    this.#snapshot = {
      signer,
      jwks: freezeJwks(published.map((r) => jwksEntry(r.public_jwk, r.kid, r.alg))),
      nextActivation: pending.length > 0 ? new Date(Math.min(...pending)) : null,
      activeSince: active.activated_at,
    };
    this.#lastError = null;
  }

  async #importPrivateKey(row: SigningKeyRow): Promise<SigningKey> {
    if (!isSigningAlg(row.alg))
      throw new KeyConfigurationError(`signing key ${row.kid} has unsupported alg ${row.alg}`);
    const jwk = JSON.parse(this.#rotation!.cipher.decrypt(row.kid, row.private_key_enc)) as JWK;
    return Object.freeze({ kid: row.kid, alg: row.alg, key: await importSigningKey(jwk, row.alg) });
  }

  #logChange(change: KeyChange, immediately: boolean, by: ChangedBy): void {
    const alg = this.#config.keys.signingAlg;
    if (change.generated) {
      this.#log.info({ kid: change.generated, alg }, 'generated a signing key');
      this.#audit.record({ type: 'key.generated', ...changedBy(by, { kid: change.generated, alg }) });
    }
    if (change.scheduled) {
      this.#log.info({ kid: change.scheduled }, 'automatic rotation: published the next signing key');
      this.#audit.record({
        type: 'key.rotated',
        ...changedBy(by, { kid: change.scheduled, alg, trigger: 'automatic' }),
      });
    }
    if (change.activated) {
      this.#log.info({ kid: change.activated, retired: change.retired ?? null }, 'a new signing key is active');
      this.#audit.record({
        type: 'key.activated',
        ...changedBy(by, { kid: change.activated, retired_kid: change.retired ?? null }),
      });
    } else if (change.retired) {
      this.#log.info({ kid: change.retired, immediately }, 'retired a signing key');
      this.#audit.record({ type: 'key.retired', ...changedBy(by, { kid: change.retired, immediately }) });
    }
  }

  #schedule(): void {
    if (!this.#background || this.#closed || !this.#rotation) return;
    let delay = this.#config.keys.cacheTtl * 1000;
    if (!this.#snapshot.signer) delay = Math.min(delay, UNLOADED_RETRY_MS);
    const activation = this.#snapshot.nextActivation;
    // Wake up when a pending key is due, so it starts signing on time rather than up to a cache period late.
    if (activation) delay = Math.min(delay, activation.getTime() - this.#now().getTime() + 10);
    this.#timer = setTimeout(() => void this.#tick(), Math.max(delay, MIN_REFRESH_MS));
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.#lastError = (err as Error).message;
      // A replica that already holds a key keeps signing with it; the next refresh tries again.
      this.#log.error({ err }, 'refreshing signing keys failed');
    } finally {
      this.#schedule();
    }
  }
}
