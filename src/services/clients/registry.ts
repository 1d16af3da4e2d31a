import type { Config } from '../../config/index.js';
import type { Db } from '../../db/database.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import type { Client } from '../../oauth/client.js';
import { CLIENT_ID_URL_PREFIX } from '../../oauth/client-id-document.js';
import { CLIENT_ID_FORM, clientMetadataPolicy } from '../../oauth/client-metadata.js';
import { findClientById } from '../../repositories/client.repository.js';
import { type ClientIdDocumentOptions, ClientIdDocuments } from './client-id-documents.js';
import { frozenClient } from './frozen.js';

/**
 * The answer of `resolveForAuthorization`: the client, or why there is none. `problem` is null for a plain unknown id,
 * or says why a client identifier URL could not be used (safe to show: it never holds a secret).
 */
export type ClientResolution = { client: Client; problem?: undefined } | { client: undefined; problem: string | null };

/** Tuning and test seams of a ClientRegistry. */
export interface ClientRegistryOptions extends Pick<ClientIdDocumentOptions, 'fetchDocument' | 'maxConcurrentFetches'> {
  /** Where client-id document failures are reported (the app's pino logger fits). */
  log?: { info?(obj: object, msg: string): void };
  /** Most clients kept in memory (default 10,000). */
  maxEntries?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** The configuration the registry reads: the cache TTL, and client-id documents (CIMD_*) with the metadata policy. */
export type ClientRegistryConfig = Pick<Config, 'clients' | 'policy'> &
  Partial<Pick<Config, 'clientIdMetadataDocuments'>>;

/** Unknown ids are remembered briefly, so a flood of one bad id costs one query per few seconds. */
const NEGATIVE_TTL_SECONDS = 5;
const MAX_NEGATIVE_ENTRIES = 1000;

/**
 * The read path: clients for the token endpoint, /authorize and the pages. `get` answers from an
 * in-process cache (TTL CLIENT_CACHE_TTL_SECONDS); every change made through ClientAdmin drops the cached
 * entry at once (`invalidate`), and other replicas see it when their entry expires. Only
 * `resolveForAuthorization` (/authorize) fetches client-id documents.
 */
export class ClientRegistry {
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly now: () => number;
  private readonly cache: TtlCache<Client>;
  private readonly misses = new TtlCache<true>(MAX_NEGATIVE_ENTRIES);
  /** Database reads in flight (`get`), and authorization lookups in flight (`resolveForAuthorization`). */
  private readonly reading = new Map<string, Promise<Client | undefined>>();
  private readonly resolving = new Map<string, Promise<ClientResolution>>();
  /** Clients resolved from their client-id documents; null when CIMD_ENABLED is off. */
  private readonly documents: ClientIdDocuments | null;
  /** Bumped by every invalidation, so a load that raced with a change is not cached. */
  private generation = 0;

  constructor(
    private readonly db: Db,
    config: ClientRegistryConfig,
    options: ClientRegistryOptions = {},
  ) {
    this.ttlMs = config.clients.cacheTtl * 1000;
    this.negativeTtlMs = Math.min(config.clients.cacheTtl, NEGATIVE_TTL_SECONDS) * 1000;
    this.now = options.now ?? Date.now;
    this.cache = new TtlCache(options.maxEntries ?? 10_000);
    const cimd = config.clientIdMetadataDocuments;
    this.documents = cimd?.enabled
      ? new ClientIdDocuments(
          db,
          cimd,
          { ...clientMetadataPolicy(config), webHttpLoopback: false },
          { ...options, now: this.now },
        )
      : null;
  }

  /**
   * A client by id, from the cache when fresh (no database query), else read from the database once and
   * cached. Never fetches a client-id document, so an unthrottled request (token, revoke, sign-out) cannot
   * make this server fetch or store anything: a client-id document's client is known here once /authorize
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
   * The client of an authorization request, or why there is none: the only lookup that fetches client-id
   * documents (Client ID Metadata Documents, draft-ietf-oauth-client-id-metadata-document-02 §5), for
   * /authorize alone, which is rate limited. With CIMD_ENABLED, a client_id starting with https:// that no
   * operator registered is fetched, validated and upserted into `clients` (its grants reference it) with
   * document_expires_at from its HTTP cache headers, within CIMD_CACHE_*, whenever it is not stored or
   * its document is due. The row is cached like any client's (CLIENT_CACHE_TTL_SECONDS), so a disable or
   * delete on another replica shows as soon.
   */
  async resolveForAuthorization(clientId: string): Promise<ClientResolution> {
    const documents = this.documents;
    if (!documents || !clientId.startsWith(CLIENT_ID_URL_PREFIX) || !CLIENT_ID_FORM.test(clientId)) {
      const client = await this.get(clientId);
      return client ? { client } : this.unknown(clientId);
    }
    const now = this.now();
    const hit = this.cache.get(clientId, now);
    if (hit && !this.documentDue(hit, now)) return { client: hit };
    return this.shared(this.resolving, clientId, () => this.resolveDocument(documents, clientId));
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
    const usable =
      row && (row.source !== 'metadata_document' || this.documents !== null) ? frozenClient(row) : undefined;
    return this.remember(clientId, usable, generation);
  }

  private async resolveDocument(documents: ClientIdDocuments, clientId: string): Promise<ClientResolution> {
    const generation = this.generation;
    // Read first: another replica may have refreshed the document, or an operator registered the id (§7.2)
    // or disabled it (no use fetching a document for a client that is refused anyway).
    const row = await findClientById(this.db, clientId);
    if (row && (row.source !== 'metadata_document' || row.disabled_at !== null || !this.documentDue(row, this.now()))) {
      return { client: this.remember(clientId, frozenClient(row), generation) };
    }
    const found = await documents.lookup(clientId);
    // A failed refetch leaves the stored row as it was: `get` still answers from it.
    if (!found.row) return { client: undefined, problem: found.problem };
    return { client: this.remember(clientId, frozenClient(found.row), generation) };
  }

  /** Whether a client-id document's stored copy is no longer fresh, so /authorize fetches it again. */
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

  private unknown(clientId: string): ClientResolution {
    if (this.documents && /^http:\/\//i.test(clientId))
      return { client: undefined, problem: 'a client identifier URL must use the https scheme (draft section 3)' };
    return { client: undefined, problem: null };
  }
}
