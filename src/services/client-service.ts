import type { Config } from '../config/index.js';
import type { Db } from '../db/database.js';
import type { ClientRow, ClientSource, ClientUpdate } from '../db/tables/client.table.js';
import {
  CLIENT_ID_FORM,
  type MetadataPolicy,
  metadataOf,
  metadataPolicy,
  usesSecret,
  validateClientMetadata,
} from '../oauth/client-metadata.js';
import { CLIENT_ID_URL_PREFIX } from '../oauth/client-id-metadata-document.js';
import { generateClientId, generateClientSecret, hashSecret } from '../oauth/secrets.js';
import {
  createClient,
  deleteClient,
  deleteUnusedMetadataDocumentClients,
  findClientById,
  listClients,
  rotateClientSecret,
  setClientDisabled,
  touchClientLastUsed,
  updateClient,
} from '../repositories/client.repository.js';
import { type MetadataDocumentOptions, MetadataDocumentClients } from './metadata-document-clients.js';
import { TtlCache } from '../lib/ttl-cache.js';
import type { Client } from '../oauth/client.js';

export type { Client } from '../oauth/client.js';

/** A client just created or changed, with its new secret when one was generated (shown once, never stored). */
export interface ClientWithSecret {
  client: Client;
  secret: string | null;
}

/** A change the service refuses: no such client, or one that conflicts with the client's state. */
export class ClientServiceError extends Error {
  constructor(
    readonly kind: 'not_found' | 'conflict',
    message: string,
  ) {
    super(message);
    this.name = 'ClientServiceError';
  }
}

/**
 * The answer of `resolveForAuthorization`: the client, or why there is none. `problem` is null for a plain unknown id,
 * or says why a client identifier URL could not be used (safe to show: it never holds a secret).
 */
export type ClientLookup = { client: Client; problem?: undefined } | { client: undefined; problem: string | null };

/** Tuning and test seams of a ClientService. */
export interface ClientServiceOptions extends Pick<MetadataDocumentOptions, 'fetchDocument' | 'maxConcurrentFetches'> {
  /** Where background and metadata-document failures are reported (the app's pino logger fits). */
  log?: { debug(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** Most clients kept in memory (default 10,000). */
  maxEntries?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** last_used_at is a coarse signal; writing it more often would put a write on every token request. */
const TOUCH_INTERVAL_SECONDS = 3600;
/** Unknown ids are remembered briefly, so a flood of one bad id costs one query per few seconds. */
const NEGATIVE_TTL_SECONDS = 5;
const MAX_NEGATIVE_ENTRIES = 1000;

function freeze(row: ClientRow): Client {
  for (const value of Object.values(row)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze(row);
}

/**
 * Clients for the hot path and for administration. `get` answers from an in-process cache (TTL
 * CLIENT_CACHE_TTL_SECONDS); every change made through this service drops the cached entry at once, and
 * other replicas see it when their entry expires. Only `resolveForAuthorization` (/authorize) fetches
 * metadata documents.
 */
export class ClientService {
  private readonly policy: MetadataPolicy;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly now: () => number;
  private readonly log: ClientServiceOptions['log'];
  private readonly cache: TtlCache<Client>;
  private readonly misses = new TtlCache<true>(MAX_NEGATIVE_ENTRIES);
  private readonly touched: TtlCache<true>;
  /** Database reads in flight (`get`), and authorization lookups in flight (`resolveForAuthorization`). */
  private readonly reading = new Map<string, Promise<Client | undefined>>();
  private readonly resolving = new Map<string, Promise<ClientLookup>>();
  /** Clients resolved from their metadata documents; null when CIMD_ENABLED is off. */
  private readonly cimd: MetadataDocumentClients | null;
  private readonly pending = new Set<Promise<void>>();
  /** Bumped by every invalidation, so a load that raced with a change is not cached. */
  private generation = 0;

  constructor(
    private readonly db: Db,
    config: Pick<Config, 'clients' | 'policy'> & Partial<Pick<Config, 'clientIdMetadataDocuments'>>,
    options: ClientServiceOptions = {},
  ) {
    this.policy = metadataPolicy(config);
    this.ttlMs = config.clients.cacheTtl * 1000;
    this.negativeTtlMs = Math.min(config.clients.cacheTtl, NEGATIVE_TTL_SECONDS) * 1000;
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.cache = new TtlCache(options.maxEntries ?? 10_000);
    this.touched = new TtlCache(options.maxEntries ?? 10_000);
    const cimd = config.clientIdMetadataDocuments;
    this.cimd = cimd?.enabled
      ? new MetadataDocumentClients(db, cimd, this.policy, { ...options, now: this.now })
      : null;
  }

  /**
   * A client by id, from the cache when fresh (no database query), else read from the database once and
   * cached. Never fetches a metadata document, so an unthrottled request (token, revoke, sign-out) cannot
   * make this server fetch or store anything: a metadata-document client is known here once /authorize
   * has stored it (`resolveForAuthorization`), and is answered from its stored row even once its document
   * is due (the grants it presents were issued under that row; the next /authorize refetches). Disabled
   * clients are returned too: callers check `disabled_at`.
   */
  async get(clientId: string): Promise<Client | undefined> {
    if (!CLIENT_ID_FORM.test(clientId)) return undefined;
    const now = this.now();
    const hit = this.cache.get(clientId, now);
    if (hit) return hit;
    if (this.misses.get(clientId, now)) return undefined;
    return this.shared(this.reading, clientId, () => this.read(clientId));
  }

  /**
   * The client of an authorization request, or why there is none: the only lookup that fetches Client
   * ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02 §5), for /authorize alone,
   * which is rate limited. With CIMD_ENABLED, a client_id starting with https:// that no operator
   * registered is fetched, validated and upserted into `clients` (its grants reference it) with
   * document_expires_at from its HTTP cache headers, within CIMD_CACHE_*, whenever it is not stored or
   * its document is due. The row is cached like any client's (CLIENT_CACHE_TTL_SECONDS), so a disable or
   * delete on another replica shows as soon.
   */
  async resolveForAuthorization(clientId: string): Promise<ClientLookup> {
    const cimd = this.cimd;
    if (!cimd || !clientId.startsWith(CLIENT_ID_URL_PREFIX) || !CLIENT_ID_FORM.test(clientId)) {
      const client = await this.get(clientId);
      return client ? { client } : this.unknown(clientId);
    }
    const now = this.now();
    const hit = this.cache.get(clientId, now);
    if (hit && !this.documentDue(hit, now)) return { client: hit };
    return this.shared(this.resolving, clientId, () => this.resolveDocument(cimd, clientId));
  }

  /** Concurrent lookups of one id share one query (and one document fetch). */
  private shared<T>(inFlight: Map<string, Promise<T>>, clientId: string, start: () => Promise<T>): Promise<T> {
    let load = inFlight.get(clientId);
    if (!load) {
      load = start().finally(() => {
        if (inFlight.get(clientId) === load) inFlight.delete(clientId);
      });
      inFlight.set(clientId, load);
    }
    return load;
  }

  private async read(clientId: string): Promise<Client | undefined> {
    const generation = this.generation;
    const row = await findClientById(this.db, clientId);
    // With CIMD off, a row left from when it was on is not trusted: its document is no longer checked.
    const usable = row && (row.source !== 'metadata_document' || this.cimd !== null) ? freeze(row) : undefined;
    return this.remember(clientId, usable, generation);
  }

  private async resolveDocument(cimd: MetadataDocumentClients, clientId: string): Promise<ClientLookup> {
    const generation = this.generation;
    // Read first: another replica may have refreshed the document, or an operator registered the id (§7.2)
    // or disabled it (no use fetching a document for a client that is refused anyway).
    const row = await findClientById(this.db, clientId);
    if (row && (row.source !== 'metadata_document' || row.disabled_at !== null || !this.documentDue(row, this.now()))) {
      return { client: this.remember(clientId, freeze(row), generation) };
    }
    const found = await cimd.lookup(clientId);
    // A failed refetch leaves the stored row as it was: `get` still answers from it.
    if (!found.row) return { client: undefined, problem: found.problem };
    return { client: this.remember(clientId, freeze(found.row), generation) };
  }

  /** Whether a metadata-document client's stored document is no longer fresh, so /authorize fetches it again. */
  private documentDue(client: Client, now: number): boolean {
    if (client.source !== 'metadata_document') return false;
    return client.document_expires_at === null || client.document_expires_at.getTime() <= now;
  }

  /** Caches what a load found (unless a change raced with it), and returns it. */
  private remember<C extends Client | undefined>(clientId: string, client: C, generation: number): C {
    if (generation === this.generation) {
      const now = this.now();
      if (!client) {
        this.misses.set(clientId, true, now + this.negativeTtlMs);
      } else {
        this.misses.delete(clientId);
        if (this.ttlMs > 0) this.cache.set(clientId, client, now + this.ttlMs);
      }
    }
    return client;
  }

  private unknown(clientId: string): ClientLookup {
    if (this.cimd && /^http:\/\//i.test(clientId))
      return { client: undefined, problem: 'a client identifier URL must use the https scheme (draft section 3)' };
    return { client: undefined, problem: null };
  }

  /** Drops cached entries (one id, or all) so the next `get` reads the database. */
  invalidate(clientId?: string): void {
    this.generation += 1;
    if (clientId === undefined) {
      this.cache.clear();
      this.misses.clear();
      this.reading.clear();
      this.resolving.clear();
      return;
    }
    this.cache.delete(clientId);
    this.misses.delete(clientId);
    this.reading.delete(clientId);
    this.resolving.delete(clientId);
  }

  /** A client read straight from the database (administration; never cached). */
  async find(clientId: string): Promise<Client | undefined> {
    const row = await findClientById(this.db, clientId);
    return row ? freeze(row) : undefined;
  }

  /** Every client, oldest first, from the database. */
  async list(): Promise<Client[]> {
    return (await listClients(this.db)).map(freeze);
  }

  /**
   * Validates metadata and creates a client; a confidential client gets a new secret, returned once.
   * `registrationAccessTokenHash` is the hash of an RFC 7592 registration access token (dynamic registration).
   */
  async create(
    input: Record<string, unknown>,
    options: { source?: ClientSource; clientId?: string; registrationAccessTokenHash?: string } = {},
  ): Promise<ClientWithSecret> {
    const metadata = validateClientMetadata(input, this.policy);
    const clientId = options.clientId ?? generateClientId();
    if (!CLIENT_ID_FORM.test(clientId))
      throw new ClientServiceError(
        'conflict',
        'client_id must be 1 to 255 visible ASCII characters (RFC 6749 Appendix A.1)',
      );
    if (await findClientById(this.db, clientId))
      throw new ClientServiceError('conflict', `client ${clientId} already exists`);
    const secret = usesSecret(metadata.token_endpoint_auth_method) ? generateClientSecret() : null;
    const row = await createClient(this.db, {
      ...metadata,
      client_id: clientId,
      secret_hash: secret === null ? null : hashSecret(secret),
      source: options.source ?? 'admin',
      secret_rotated_at: null,
      last_used_at: null,
      disabled_at: null,
      registration_access_token_hash: options.registrationAccessTokenHash ?? null,
    });
    this.invalidate(clientId);
    return { client: freeze(row), secret };
  }

  /**
   * Changes some metadata fields and re-validates the whole client. A public client made confidential
   * gets a new secret (returned once); a confidential client made public loses its secret.
   */
  async update(clientId: string, changes: Record<string, unknown>): Promise<ClientWithSecret> {
    const current = this.requireOwnMetadata(await this.require(clientId));
    const input = metadataOf(current);
    for (const [field, value] of Object.entries(changes)) if (value !== undefined) input[field] = value;
    // Response types follow the grant types unless the change names them too.
    if (changes.grant_types !== undefined && changes.response_types === undefined) delete input.response_types;
    const metadata = validateClientMetadata(input, this.policy);
    const update: ClientUpdate = { ...metadata };
    let secret: string | null = null;
    if (usesSecret(metadata.token_endpoint_auth_method) && current.secret_hash === null) {
      secret = generateClientSecret();
      update.secret_hash = hashSecret(secret);
      update.secret_rotated_at = new Date(this.now());
    } else if (!usesSecret(metadata.token_endpoint_auth_method)) {
      update.secret_hash = null;
    }
    const row = await updateClient(this.db, clientId, update);
    this.invalidate(clientId);
    if (!row) throw this.notFound(clientId);
    return { client: freeze(row), secret };
  }

  /** Deletes a client; whether it existed. */
  async delete(clientId: string): Promise<boolean> {
    const deleted = await deleteClient(this.db, clientId);
    this.invalidate(clientId);
    return deleted;
  }

  /**
   * Deletes the metadata-document clients nothing live references that were neither fetched nor used for
   * `unusedForSeconds` (deleteUnusedMetadataDocumentClients); returns their ids.
   */
  async pruneMetadataDocumentClients(unusedForSeconds: number): Promise<string[]> {
    const deleted = await deleteUnusedMetadataDocumentClients(this.db, unusedForSeconds);
    for (const clientId of deleted) this.invalidate(clientId);
    return deleted;
  }

  /** Gives a confidential client a new secret, returned once; the old one stops working at once. */
  async rotateSecret(clientId: string): Promise<{ client: Client; secret: string }> {
    const current = this.requireOwnMetadata(await this.require(clientId));
    if (!usesSecret(current.token_endpoint_auth_method)) {
      throw new ClientServiceError(
        'conflict',
        `client ${clientId} is public (token_endpoint_auth_method none) and has no secret`,
      );
    }
    const secret = generateClientSecret();
    const row = await rotateClientSecret(this.db, clientId, hashSecret(secret));
    this.invalidate(clientId);
    if (!row) throw this.notFound(clientId);
    return { client: freeze(row), secret };
  }

  /** Disables a client (it can no longer authenticate) or enables it again. */
  async setDisabled(clientId: string, disabled: boolean): Promise<Client> {
    const row = await setClientDisabled(this.db, clientId, disabled);
    this.invalidate(clientId);
    if (!row) throw this.notFound(clientId);
    return freeze(row);
  }

  /**
   * Records that a client was used: at most once per client per hour from this process, off the
   * request's critical path, failures only logged at debug.
   */
  markUsed(clientId: string): void {
    const now = this.now();
    if (this.touched.get(clientId, now)) return;
    this.touched.set(clientId, true, now + TOUCH_INTERVAL_SECONDS * 1000);
    const write = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => touchClientLastUsed(this.db, clientId, TOUCH_INTERVAL_SECONDS))
      .catch((err: unknown) => this.log?.debug({ err, clientId }, 'could not record client last use'))
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }

  /** Waits for background writes (last_used_at) to finish; called before the database closes. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /**
   * A metadata-document client's metadata belongs to its document (CIMD draft §4): an edit here would be
   * undone at the next refetch, and a secret would turn a public client confidential behind its author's
   * back. Disable or delete it instead.
   */
  private requireOwnMetadata(row: ClientRow): ClientRow {
    if (row.source === 'metadata_document') {
      throw new ClientServiceError(
        'conflict',
        `client ${row.client_id} is defined by its metadata document; disable or delete it instead`,
      );
    }
    return row;
  }

  private async require(clientId: string): Promise<ClientRow> {
    const row = await findClientById(this.db, clientId);
    if (!row) throw this.notFound(clientId);
    return row;
  }

  private notFound(clientId: string): ClientServiceError {
    return new ClientServiceError('not_found', `no such client: ${clientId}`);
  }
}
