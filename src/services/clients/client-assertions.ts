import { createLocalJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../../config/index.js';
import type { Db } from '../../db/database.js';
import type { ClientJwks } from '../../db/tables/client.table.js';
import type { Clock } from '../../lib/clock.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import { ClientAssertionRefused, verifyClientAssertion } from '../../oauth/client-assertion.js';
import type { ClientAssertionVerifier } from '../../oauth/client-authentication.js';
import {
  ClientIdDocumentFetchError,
  type FetchedDocument,
  type FetchPolicy,
  fetchClientIdDocument,
} from '../../oauth/client-id-document-fetch.js';
import { ClientMetadataError, validateJwks } from '../../oauth/client-metadata.js';
import type { Client } from '../../oauth/client.js';
import { hashSecret } from '../../oauth/secrets.js';
import { recordClientAssertionJti } from '../../repositories/client-assertion-jti.repository.js';
import { documentFetchPolicy } from './client-id-documents.js';

/** Test seams and tuning of ClientAssertions. */
export interface ClientAssertionsOptions {
  /** Fetches a jwks_uri (tests count fetches); the client-id document fetch, with its SSRF safeguards, by default. */
  fetchDocument?: (url: URL, policy: FetchPolicy) => Promise<FetchedDocument>;
  /** Most key sets kept in memory (default 1,000). */
  maxEntries?: number;
}

/** The settings ClientAssertions reads. */
export type ClientAssertionsConfig = Pick<
  Config,
  'issuer' | 'tokens' | 'clientAuthentication' | 'clientIdMetadataDocuments'
>;

/** A jwks_uri key set is fetched again on an unknown kid at most this often (a flood of made-up kids costs one fetch). */
const REFETCH_INTERVAL_MS = 10_000;
/** A served key set may be larger than a registered one (pretty-printed, several RSA keys). */
const MAX_FETCHED_JWKS_BYTES = 65_536;

interface CachedSet {
  getKey: JWTVerifyGetKey;
  fetchedAt: number;
}

/**
 * private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): verifies a client assertion against the
 * client's registered keys (`jwks`, or the set at `jwks_uri`, fetched with the client-id document fetch's
 * safeguards and cached for CLIENT_JWKS_CACHE_SECONDS, fetched again once for a kid it lacks) and
 * accepts each assertion once, across replicas (the jti is recorded in Postgres until it expires).
 */
export class ClientAssertions implements ClientAssertionVerifier {
  private readonly fetchPolicy: FetchPolicy;
  private readonly fetchDocument: NonNullable<ClientAssertionsOptions['fetchDocument']>;
  private readonly byValue = new WeakMap<ClientJwks, JWTVerifyGetKey>();
  private readonly byReference: TtlCache<CachedSet>;
  private readonly fetching = new Map<string, Promise<CachedSet>>();

  constructor(
    private readonly db: Db,
    private readonly config: ClientAssertionsConfig,
    private readonly clock: Clock,
    options: ClientAssertionsOptions = {},
  ) {
    this.fetchPolicy = { ...documentFetchPolicy(config.clientIdMetadataDocuments), maxBytes: MAX_FETCHED_JWKS_BYTES };
    this.fetchDocument = options.fetchDocument ?? fetchClientIdDocument;
    this.byReference = new TtlCache(options.maxEntries ?? 1000);
  }

  /** Resolves when `assertion` authenticates `client`; throws ClientAssertionRefused (or an outage) otherwise. */
  async verify(assertion: string, client: Client): Promise<void> {
    const now = this.clock();
    const { clockSkew } = this.config.tokens;
    const verified = await verifyClientAssertion(
      assertion,
      client,
      (header, token) => this.key(client, header, token),
      {
        issuer: this.config.issuer,
        maxLifetime: this.config.clientAuthentication.assertionMaxLifetime,
        clockSkew,
        now,
      },
    );
    // RFC 7523 §3: the jti may be used once; remembered until the assertion could no longer be accepted.
    const jtiHash = hashSecret(`${client.client_id}\u0000${verified.jti}`);
    const until = new Date(verified.expiresAt.getTime() + clockSkew * 1000);
    if (!(await recordClientAssertionJti(this.db, jtiHash, until, now)))
      throw new ClientAssertionRefused('the assertion was already used (jti replay)');
  }

  /** The key that verifies this assertion, from the client's key set; an unknown kid refetches a jwks_uri once. */
  private async key(
    client: Client,
    header: Parameters<JWTVerifyGetKey>[0],
    token: Parameters<JWTVerifyGetKey>[1],
  ): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    if (client.jwks !== null) {
      let getKey = this.byValue.get(client.jwks);
      if (!getKey) {
        getKey = createLocalJWKSet(client.jwks);
        this.byValue.set(client.jwks, getKey);
      }
      return getKey(header, token);
    }
    const uri = client.jwks_uri;
    if (uri === null) throw new ClientAssertionRefused('the client has no keys (jwks or jwks_uri)');
    const nowMs = this.clock().getTime();
    const cached = this.byReference.get(uri, nowMs) ?? (await this.fetchSet(uri));
    try {
      return await cached.getKey(header, token);
    } catch (err) {
      // A new key the client has just started signing with: fetch the set once more, not more often than REFETCH_INTERVAL_MS.
      if (!(err instanceof errors.JWKSNoMatchingKey) || nowMs - cached.fetchedAt < REFETCH_INTERVAL_MS) throw err;
      const fresh = await this.fetchSet(uri);
      return fresh.getKey(header, token);
    }
  }

  /** Fetches and validates a jwks_uri key set (concurrent callers share one fetch) and caches it. */
  private fetchSet(uri: string): Promise<CachedSet> {
    let load = this.fetching.get(uri);
    if (!load) {
      load = this.load(uri).finally(() => this.fetching.delete(uri));
      this.fetching.set(uri, load);
    }
    return load;
  }

  private async load(uri: string): Promise<CachedSet> {
    let fetched: FetchedDocument;
    try {
      fetched = await this.fetchDocument(new URL(uri), this.fetchPolicy);
    } catch (err) {
      // The client's server, not ours: an authentication failure (invalid_client), never a 503.
      if (err instanceof ClientIdDocumentFetchError)
        throw new ClientAssertionRefused(`jwks_uri not fetched: ${err.detail ?? err.message}`);
      throw err;
    }
    let jwks: ClientJwks;
    try {
      jwks = validateJwks(JSON.parse(fetched.body), 'jwks_uri', MAX_FETCHED_JWKS_BYTES);
    } catch (err) {
      if (err instanceof SyntaxError || err instanceof ClientMetadataError)
        throw new ClientAssertionRefused(`jwks_uri: ${err.message}`);
      throw err;
    }
    const fetchedAt = this.clock().getTime();
    const set = { getKey: createLocalJWKSet(jwks), fetchedAt };
    this.byReference.set(uri, set, fetchedAt + this.config.clientAuthentication.jwksCacheTtl * 1000);
    return set;
  }
}
