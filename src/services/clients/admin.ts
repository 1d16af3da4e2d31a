import type { Config } from '../../config/index.js';
import type { Db } from '../../db/database.js';
import type { ClientRow, ClientSource, ClientUpdate } from '../../db/tables/client.table.js';
import type { Client } from '../../oauth/client.js';
import {
  CLIENT_ID_FORM,
  type ClientMetadataPolicy,
  clientMetadataOf,
  clientMetadataPolicy,
  usesSecret,
  validateClientMetadata,
} from '../../oauth/client-metadata.js';
import { generateClientId, generateClientSecret, hashSecret } from '../../oauth/secrets.js';
import {
  createClient,
  deleteClient,
  deleteUnusedClientIdDocumentClients,
  findClientById,
  listClients,
  rotateClientSecret,
  setClientDisabled,
  updateClient,
} from '../../repositories/client.repository.js';
import { type AuditSink, type ChangedBy, changedBy, noAudit } from '../audit/audit-log.js';

export type { ChangedBy } from '../audit/audit-log.js';
import { ClientServiceError, clientNotFound } from './errors.js';
import { frozenClient } from './frozen.js';

/** A client just created or changed, with its new secret when one was generated (shown once, never stored). */
export interface ClientWithSecret {
  client: Client;
  secret: string | null;
}

/** What is told of every change, so cached copies (the ClientRegistry's) are dropped at once. */
export interface ClientChangeListener {
  invalidate(clientId: string): void;
}

const OPERATOR: ChangedBy = { actor: 'admin' };

/** Tuning and test seams of ClientAdmin. */
export interface ClientAdminOptions {
  /** Told of every change (the registry, so this process sees it at once). */
  changes?: ClientChangeListener;
  /** Where every change is reported (docs/audit.md). */
  audit?: AuditSink;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/**
 * Admin writes: create, update, rotate a secret, disable, delete, and prune unused client-id document
 * clients; what the admin API, the CLI and registration use. Every write validates client metadata with
 * the one rule set (oauth/client-metadata.ts) and reads the database, never a cache.
 */
export class ClientAdmin {
  private readonly policy: ClientMetadataPolicy;
  private readonly now: () => number;
  private readonly changes: ClientChangeListener | undefined;
  private readonly audit: AuditSink;

  constructor(
    private readonly db: Db,
    config: Pick<Config, 'policy'>,
    options: ClientAdminOptions = {},
  ) {
    this.policy = clientMetadataPolicy(config);
    this.now = options.now ?? Date.now;
    this.changes = options.changes;
    this.audit = options.audit ?? noAudit;
  }

  /** A client read straight from the database (never cached). */
  async find(clientId: string): Promise<Client | undefined> {
    const row = await findClientById(this.db, clientId);
    return row ? frozenClient(row) : undefined;
  }

  /**
   * The metadata rules for a client from `source`. The development allowance of http://localhost redirects for
   * web clients (ClientMetadataPolicy.webHttpLoopback) is for clients an operator makes; a client registering
   * itself keeps RFC 8252 §7.3's rule (loopback for native apps only) in every mode.
   */
  private policyFor(source: ClientSource): ClientMetadataPolicy {
    return source === 'registration' ? { ...this.policy, webHttpLoopback: false } : this.policy;
  }

  /** Every client, oldest first, from the database. */
  async list(): Promise<Client[]> {
    return (await listClients(this.db)).map(frozenClient);
  }

  /**
   * Validates client metadata and creates a client; a confidential client gets a new secret, returned once.
   * `registrationAccessTokenHash` is the hash of an RFC 7592 registration access token (dynamic registration).
   */
  async create(
    input: Record<string, unknown>,
    options: { source?: ClientSource; clientId?: string; registrationAccessTokenHash?: string; by?: ChangedBy } = {},
  ): Promise<ClientWithSecret> {
    const metadata = validateClientMetadata(input, this.policyFor(options.source ?? 'admin'));
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
    this.changed(clientId);
    const source = options.source ?? 'admin';
    this.record(source === 'registration' ? 'client.registered' : 'client.created', clientId, options.by, {
      source,
      name: row.name,
      auth_method: row.token_endpoint_auth_method,
      grant_types: row.grant_types,
      redirect_uris: row.redirect_uris,
    });
    return { client: frozenClient(row), secret };
  }

  /**
   * Changes some client metadata fields and re-validates the whole client. A public client made
   * confidential gets a new secret (returned once); a confidential client made public loses its secret.
   */
  async update(clientId: string, changes: Record<string, unknown>, by?: ChangedBy): Promise<ClientWithSecret> {
    const current = this.requireOwnMetadata(await this.require(clientId));
    const input = clientMetadataOf(current);
    for (const [field, value] of Object.entries(changes)) if (value !== undefined) input[field] = value;
    // Response types follow the grant types unless the change names them too.
    if (changes.grant_types !== undefined && changes.response_types === undefined) delete input.response_types;
    // Turning the FAPI 2.0 profile on turns PAR and DPoP-bound tokens on with it, unless the change itself
    // says otherwise (refused).
    if (changes.security_profile === 'fapi2') {
      if (changes.require_pushed_authorization_requests === undefined)
        delete input.require_pushed_authorization_requests;
      if (changes.dpop_bound_access_tokens === undefined) delete input.dpop_bound_access_tokens;
    }
    const metadata = validateClientMetadata(input, this.policyFor(current.source));
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
    this.changed(clientId);
    if (!row) throw clientNotFound(clientId);
    this.record('client.updated', clientId, by, {
      // The names of the fields changed, never their values (a jwks or a URI is not secret, but is bulky).
      fields: Object.keys(changes)
        .filter((field) => changes[field] !== undefined)
        .sort(),
      auth_method: row.token_endpoint_auth_method,
    });
    return { client: frozenClient(row), secret };
  }

  /** Deletes a client with its grants and tokens (database cascade); whether it existed. */
  async delete(clientId: string, by?: ChangedBy): Promise<boolean> {
    const deleted = await deleteClient(this.db, clientId);
    this.changed(clientId);
    if (deleted) this.record('client.deleted', clientId, by, {});
    return deleted;
  }

  /**
   * Deletes the client-id document clients nothing live references that were neither fetched nor used
   * for `unusedForSeconds` (deleteUnusedClientIdDocumentClients); returns their ids.
   */
  async pruneClientIdDocumentClients(unusedForSeconds: number, by?: ChangedBy): Promise<string[]> {
    const deleted = await deleteUnusedClientIdDocumentClients(this.db, unusedForSeconds);
    for (const clientId of deleted) {
      this.changed(clientId);
      this.record('client.deleted', clientId, by, { reason: 'unused_metadata_document' });
    }
    return deleted;
  }

  /** Gives a confidential client a new secret, returned once; the old one stops working at once. */
  async rotateSecret(clientId: string, by?: ChangedBy): Promise<{ client: Client; secret: string }> {
    const current = this.requireOwnMetadata(await this.require(clientId));
    if (!usesSecret(current.token_endpoint_auth_method)) {
      throw new ClientServiceError(
        'conflict',
        current.token_endpoint_auth_method === 'none'
          ? `client ${clientId} is public (token_endpoint_auth_method none) and has no secret`
          : `client ${clientId} authenticates with private_key_jwt and has no secret; change its jwks or jwks_uri instead`,
      );
    }
    const secret = generateClientSecret();
    const row = await rotateClientSecret(this.db, clientId, hashSecret(secret));
    this.changed(clientId);
    if (!row) throw clientNotFound(clientId);
    this.record('client.secret_rotated', clientId, by, {});
    return { client: frozenClient(row), secret };
  }

  /** Disables a client (it can no longer authenticate) or enables it again. */
  async setDisabled(clientId: string, disabled: boolean, by?: ChangedBy): Promise<Client> {
    const row = await setClientDisabled(this.db, clientId, disabled);
    this.changed(clientId);
    if (!row) throw clientNotFound(clientId);
    this.record(disabled ? 'client.disabled' : 'client.enabled', clientId, by, {});
    return frozenClient(row);
  }

  private changed(clientId: string): void {
    this.changes?.invalidate(clientId);
  }

  /** Reports a change to the audit trail: who, through what, and non-secret facts (never a secret or its hash). */
  private record(type: string, clientId: string, by: ChangedBy = OPERATOR, details: Record<string, unknown>): void {
    this.audit.record({ type, clientId, ...changedBy(by, details) });
  }

  /**
   * A client-id document's client has its metadata from its document (CIMD draft §4): an edit here
   * would be undone at the next refetch, and a secret would turn a public client confidential behind its
   * author's back. Disable or delete it instead.
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
    if (!row) throw clientNotFound(clientId);
    return row;
  }
}
