import { type AuditSink, noAudit } from '../audit/audit-log.js';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { type Config, secretWeakness } from '../../config/index.js';
import type { Database } from '../../db/database.js';
import type { ClientRow } from '../../db/tables/client.table.js';
import { DomainError } from '../../lib/errors.js';
import {
  CLIENT_ID_FORM,
  CLIENT_METADATA_FIELDS,
  type ClientMetadata,
  ClientMetadataError,
  type ClientMetadataPolicy,
  clientMetadataPolicy,
  usesSecret,
  validateClientMetadata,
} from '../../oauth/client-metadata.js';
import { hashSecret, isSecretHash } from '../../oauth/secrets.js';
import { createClient, findClientById, listClients, updateClient } from '../../repositories/client.repository.js';

/**
 * A CLIENTS_FILE that cannot be applied (the operator's to fix); the message names the client and the
 * field. Nothing was written.
 */
export class ClientsFileError extends DomainError {
  constructor(message: string) {
    super('misconfigured', `CLIENTS_FILE: ${message}`);
  }
}

/** Where the file's outcome is reported (the app's pino logger fits). */
export interface ClientsFileLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One validated entry of the file. */
export interface FileClient {
  clientId: string;
  metadata: ClientMetadata;
  secretHash: string | null;
}

/** What applying the file did, by client_id. */
export interface ClientsFileResult {
  created: string[];
  updated: string[];
  unchanged: string[];
}

const ENTRY_KEYS = new Set(['client_id', 'secret_hash', 'secret_file', 'client_secret']);

class EntryError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

async function readSecretFile(value: unknown, baseDir: string): Promise<string> {
  if (typeof value !== 'string' || value.trim() === '') throw new EntryError('secret_file', 'must be a file path');
  const path = resolve(baseDir, value);
  let secret: string;
  try {
    // A trailing newline is an artefact of how the file was written, not part of the secret.
    secret = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new EntryError('secret_file', `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  // Stored as a fast SHA-256, so the secret itself must carry the entropy (never echoed here).
  const weakness = secret === '' ? 'is empty' : secretWeakness(secret);
  if (weakness) throw new EntryError('secret_file', `the secret in ${path} ${weakness}`);
  return hashSecret(secret);
}

async function readEntry(entry: unknown, policy: ClientMetadataPolicy, baseDir: string): Promise<FileClient> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
    throw new EntryError('client', 'must be an object');
  const data = entry as Record<string, unknown>;
  if (typeof data.client_id !== 'string' || !CLIENT_ID_FORM.test(data.client_id)) {
    throw new EntryError('client_id', 'is required: 1 to 255 visible ASCII characters (RFC 6749 Appendix A.1)');
  }
  if ('client_secret' in data) {
    throw new EntryError(
      'client_secret',
      'plaintext secrets are not allowed in CLIENTS_FILE; use secret_hash (SHA-256 of the secret, base64url) or secret_file (a path to a file holding the secret)',
    );
  }
  const metadataInput = Object.fromEntries(Object.entries(data).filter(([key]) => !ENTRY_KEYS.has(key)));
  const metadata = validateClientMetadata(metadataInput, policy);
  const hasHash = data.secret_hash !== undefined;
  const hasFile = data.secret_file !== undefined;
  if (!usesSecret(metadata.token_endpoint_auth_method)) {
    if (hasHash || hasFile)
      throw new EntryError(
        hasHash ? 'secret_hash' : 'secret_file',
        metadata.token_endpoint_auth_method === 'none'
          ? 'a public client (token_endpoint_auth_method none) has no secret'
          : `a ${metadata.token_endpoint_auth_method} client authenticates with its key (jwks or jwks_uri), not a secret`,
      );
    return { clientId: data.client_id, metadata, secretHash: null };
  }
  if (hasHash && hasFile) throw new EntryError('secret_hash', 'give secret_hash or secret_file, not both');
  if (hasHash) {
    if (typeof data.secret_hash !== 'string' || !isSecretHash(data.secret_hash)) {
      throw new EntryError('secret_hash', 'must be the SHA-256 of the secret in unpadded base64url (43 characters)');
    }
    return { clientId: data.client_id, metadata, secretHash: data.secret_hash };
  }
  if (hasFile)
    return { clientId: data.client_id, metadata, secretHash: await readSecretFile(data.secret_file, baseDir) };
  throw new EntryError(
    'secret_hash',
    `required for token_endpoint_auth_method ${metadata.token_endpoint_auth_method} (or secret_file)`,
  );
}

/** Reads and validates every entry of a clients file, touching no database; throws ClientsFileError. */
export async function readClientsFile(path: string, policy: ClientMetadataPolicy): Promise<FileClient[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ClientsFileError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ClientsFileError(`${path} is not valid JSON (${(err as Error).message})`);
  }
  if (
    doc === null ||
    typeof doc !== 'object' ||
    Array.isArray(doc) ||
    !Array.isArray((doc as { clients?: unknown }).clients)
  ) {
    throw new ClientsFileError(`${path} must be a JSON object { "clients": [ ... ] }`);
  }
  const extra = Object.keys(doc).find((key) => key !== 'clients');
  if (extra) throw new ClientsFileError(`${path}: unknown top-level field "${extra}"`);

  const out: FileClient[] = [];
  const seen = new Set<string>();
  const entries = (doc as { clients: unknown[] }).clients;
  for (const [i, entry] of entries.entries()) {
    const id = (entry as { client_id?: unknown } | null)?.client_id;
    const label = typeof id === 'string' ? `client "${id}" (clients[${i}])` : `clients[${i}]`;
    try {
      const client = await readEntry(entry, policy, dirname(resolve(path)));
      if (seen.has(client.clientId)) throw new EntryError('client_id', 'appears more than once in the file');
      seen.add(client.clientId);
      out.push(client);
    } catch (err) {
      if (err instanceof EntryError || err instanceof ClientMetadataError)
        throw new ClientsFileError(`${label}: ${err.message}`);
      throw err;
    }
  }
  return out;
}

/** JSON with object keys sorted: jsonb (`jwks`) gives keys back in its own order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function differs(row: ClientRow, client: FileClient): boolean {
  if (row.secret_hash !== client.secretHash) return true;
  return CLIENT_METADATA_FIELDS.some((field) => canonicalJson(row[field]) !== canonicalJson(client.metadata[field]));
}

/**
 * Applies CLIENTS_FILE at start: creates missing clients and updates changed ones (source 'file') in one
 * transaction, so a bad entry leaves the database as it was. Clients from other sources are never touched.
 */
export async function applyClientsFile(
  db: Kysely<Database>,
  config: Pick<Config, 'clients' | 'policy' | 'database'>,
  log: ClientsFileLogger,
  audit: AuditSink = noAudit,
): Promise<ClientsFileResult> {
  const path = config.clients.file;
  const clients = await readClientsFile(path, clientMetadataPolicy(config));
  const result: ClientsFileResult = { created: [], updated: [], unchanged: [] };
  const stale = await db.transaction().execute(async (trx) => {
    // Replicas starting together apply the file one after another, not into each other's inserts.
    await sql`select pg_advisory_xact_lock(hashtext(${`gatehouse.clients-file.${config.database.schema}`}))`.execute(
      trx,
    );
    for (const client of clients) {
      const row = await findClientById(trx, client.clientId);
      const columns = { ...client.metadata, secret_hash: client.secretHash };
      if (!row) {
        await createClient(trx, {
          ...columns,
          client_id: client.clientId,
          source: 'file',
          secret_rotated_at: null,
          last_used_at: null,
          disabled_at: null,
        });
        result.created.push(client.clientId);
      } else if (row.source !== 'file') {
        throw new ClientsFileError(
          `client "${client.clientId}": client_id is already used by a client created by ${row.source}; CLIENTS_FILE manages only its own clients (delete that client or pick another client_id)`,
        );
      } else if (differs(row, client)) {
        const rotated = row.secret_hash !== client.secretHash ? { secret_rotated_at: new Date() } : {};
        await updateClient(trx, client.clientId, { ...columns, ...rotated });
        result.updated.push(client.clientId);
      } else {
        result.unchanged.push(client.clientId);
      }
    }
    const inFile = new Set(clients.map((c) => c.clientId));
    return (await listClients(trx))
      .filter((row) => row.source === 'file' && !inFile.has(row.client_id))
      .map((row) => row.client_id);
  });
  log.info({ file: path, ...result }, 'applied CLIENTS_FILE');
  // After the commit: only changes that happened are in the audit trail.
  const via = { source: 'file', via: 'clients_file' };
  for (const clientId of result.created)
    audit.record({ type: 'client.created', actor: 'system', clientId, details: via });
  for (const clientId of result.updated)
    audit.record({ type: 'client.updated', actor: 'system', clientId, details: via });
  // Deleting would also delete their grants and tokens; that is left to an explicit `gatehouse clients delete`.
  if (stale.length > 0)
    log.warn({ file: path, clients: stale }, 'clients from CLIENTS_FILE are no longer in it and were left as they are');
  return result;
}
