import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Config } from '../../config/index.js';
import type { Db } from '../../db/database.js';
import type { ClientRow } from '../../db/tables/client.table.js';
import { DomainError } from '../../lib/errors.js';
import {
  type CacheBounds,
  cacheLifetime,
  clientIdUrlProblem,
  ClientIdDocumentError,
  clientMetadataFromDocument,
} from '../../oauth/client-id-document.js';
import {
  type FetchedDocument,
  type FetchPolicy,
  fetchClientIdDocument,
  ClientIdDocumentFetchError,
} from '../../oauth/client-id-document-fetch.js';
import type { ClientMetadataPolicy } from '../../oauth/client-metadata.js';
import { findClientById, upsertClientIdDocumentClient } from '../../repositories/client.repository.js';

/** Test seams and tuning of ClientIdDocuments. */
export interface ClientIdDocumentOptions {
  /** Where refused documents are reported (the app's pino logger fits). */
  log?: { info?(obj: object, msg: string): void };
  /** Fetches a client-id document (tests replace it to count fetches); fetchClientIdDocument by default. */
  fetchDocument?: (url: URL, policy: FetchPolicy) => Promise<FetchedDocument>;
  /** Most client-id document fetches in flight at once in this process (default 16). */
  maxConcurrentFetches?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/**
 * A resolved client row (a client-id document's row carries document_expires_at; an operator's row may be
 * returned instead, §7.2), or why there is none.
 */
export type DocumentLookup = { row: ClientRow; problem?: undefined } | { row?: undefined; problem: string | null };

/** CIMD_CA_FILE's certificates, checked at start so a bad file stops the start rather than every fetch. */
export function readCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new DomainError('misconfigured', `CIMD_CA_FILE: cannot read ${path} (${code})`, { cause: err });
  }
  try {
    createSecureContext({ ca: pem });
  } catch (err) {
    throw new DomainError('misconfigured', `CIMD_CA_FILE: ${path} does not hold PEM certificates`, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new DomainError('misconfigured', `CIMD_CA_FILE: ${path} does not hold PEM certificates`);
  return pem;
}

/** The fetch safeguards of the CIMD_* settings: client-id documents and client jwks_uri key sets use them alike. */
export function documentFetchPolicy(settings: Config['clientIdMetadataDocuments']): FetchPolicy {
  return {
    timeoutMs: settings.fetchTimeout,
    maxBytes: settings.maxBytes,
    allowPrivateAddresses: settings.allowPrivateAddresses,
    ca: settings.caFile ? readCaFile(settings.caFile) : null,
  };
}

/**
 * Clients known by their client-id document (Client ID Metadata Document,
 * draft-ietf-oauth-client-id-metadata-document-02): the identifier URL is checked (§3), the document
 * fetched (§5, §8.6, §8.7) and validated (§4, §4.1), then upserted into `clients`, since grants and
 * tokens reference clients.client_id. The ClientRegistry caches what this returns and shares one lookup
 * between concurrent callers.
 */
export class ClientIdDocuments {
  private readonly fetchPolicy: FetchPolicy;
  private readonly cacheBounds: CacheBounds;
  private readonly fetchDocument: NonNullable<ClientIdDocumentOptions['fetchDocument']>;
  private readonly maxConcurrentFetches: number;
  private readonly now: () => number;
  private fetchesInFlight = 0;

  constructor(
    private readonly db: Db,
    settings: Config['clientIdMetadataDocuments'],
    private readonly policy: ClientMetadataPolicy,
    private readonly options: ClientIdDocumentOptions = {},
  ) {
    this.fetchPolicy = documentFetchPolicy(settings);
    this.cacheBounds = { min: settings.cacheMin, max: settings.cacheMax, default: settings.cacheDefault };
    this.fetchDocument = options.fetchDocument ?? fetchClientIdDocument;
    this.maxConcurrentFetches = options.maxConcurrentFetches ?? 16;
    this.now = options.now ?? Date.now;
  }

  /**
   * Fetches, validates and stores the client `clientId` names, with document_expires_at set from the
   * response's cache headers (within CIMD_CACHE_*). The row returned may be an operator's
   * (pre-registered meanwhile, §7.2), used like any client. Nothing about a failure is cached (§5.2:
   * error responses and invalid documents MUST NOT be); floods are bounded instead by the rate limit of
   * /authorize (ClientRegistry.resolveForAuthorization is the only caller), by the registry sharing one
   * lookup per URL, and by a cap on fetches in flight per process.
   */
  async lookup(clientId: string): Promise<DocumentLookup> {
    const urlProblem = clientIdUrlProblem(clientId);
    if (urlProblem) return { problem: urlProblem };
    if (this.fetchesInFlight >= this.maxConcurrentFetches) {
      this.options.log?.info?.({ clientId }, 'client metadata document not fetched: too many fetches in flight');
      return {
        problem: 'the client metadata document could not be fetched now: too many are being fetched; try again shortly',
      };
    }
    this.fetchesInFlight += 1;
    let fetched: FetchedDocument;
    let metadata: ReturnType<typeof clientMetadataFromDocument>;
    try {
      fetched = await this.fetchDocument(new URL(clientId), this.fetchPolicy);
      metadata = clientMetadataFromDocument(clientId, fetched.body, this.policy);
    } catch (err) {
      if (!(err instanceof ClientIdDocumentFetchError || err instanceof ClientIdDocumentError)) throw err;
      // The URL is the client's public identifier and the message names a rule: neither is a secret. A
      // connection-level detail is logged only (see ClientIdDocumentFetchError).
      const detail = err.detail;
      this.options.log?.info?.({ clientId, reason: detail ?? err.message }, 'client metadata document refused');
      if (detail !== undefined) return { problem: 'the client metadata document could not be fetched' };
      return { problem: `the client metadata document could not be used: ${err.message}` };
    } finally {
      this.fetchesInFlight -= 1;
    }
    const expiresAt = new Date(this.now() + cacheLifetime(fetched.headers, this.cacheBounds, this.now()) * 1000);
    const row =
      (await upsertClientIdDocumentClient(this.db, clientId, metadata, expiresAt)) ??
      (await findClientById(this.db, clientId));
    return row ? { row } : { problem: null };
  }
}
