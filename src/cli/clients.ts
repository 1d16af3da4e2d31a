import type { Config } from '../config/index.js';
import type { DatabaseHandle } from '../db/connect.js';
import { openForCommand } from './database.js';
import { migrateUp } from '../db/migrate.js';
import type { Client } from '../oauth/client.js';
import { ClientMetadataError } from '../oauth/client-metadata.js';
import { ClientAdmin } from '../services/clients/admin.js';
import { commandAudit } from './audit.js';

/** How long a metadata-document client goes unused before `prune-metadata-documents` deletes it, by default. */
const DEFAULT_UNUSED_DAYS = 30;

/** What `clients create` grants without --grant-type: the code flow with refresh tokens. */
export const DEFAULT_GRANT_TYPES = ['authorization_code', 'refresh_token'] as const;

/** A mistake in how `gatehouse clients` was called (printed with the usage). */
export class ClientsUsageError extends Error {
  override name = 'ClientsUsageError';
}

/** What a `gatehouse clients` action runs with: config, an open database, output mode and parsed flags. */
export interface ClientsContext {
  config: Readonly<Config>;
  handle: DatabaseHandle;
  json: boolean;
  options: Record<string, unknown>;
}

/** Flag for each metadata field, so validation errors point at what to retype. */
const FLAGS: Record<string, string> = {
  name: 'name',
  redirect_uris: 'redirect-uri',
  post_logout_redirect_uris: 'post-logout-redirect-uri',
  grant_types: 'grant-type',
  token_endpoint_auth_method: 'auth-method',
  scopes: 'scope',
  default_scopes: 'default-scope',
  resources: 'resource',
  application_type: 'application-type',
  client_uri: 'client-uri',
  logo_uri: 'logo-uri',
  policy_uri: 'policy-uri',
  tos_uri: 'tos-uri',
  contacts: 'contact',
  backchannel_logout_uri: 'backchannel-logout-uri',
  id_token_signed_response_alg: 'id-token-alg',
  default_max_age: 'default-max-age',
  jwks: 'jwks',
  jwks_uri: 'jwks-uri',
  token_endpoint_auth_signing_alg: 'auth-signing-alg',
  security_profile: 'security-profile',
};

/** `--scope "read write"` and `--scope read --scope write` mean the same. */
function words(values: unknown): string[] | undefined {
  return Array.isArray(values) ? values.flatMap((v: string) => v.split(/\s+/).filter(Boolean)) : undefined;
}

/** The metadata fields the flags set; absent flags leave fields out. */
function metadataFromFlags(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, flag] of Object.entries(FLAGS)) {
    const value = field.endsWith('scopes') ? words(options[flag]) : options[flag];
    if (value !== undefined) out[field] = value;
  }
  if (typeof options.jwks === 'string') {
    try {
      out.jwks = JSON.parse(options.jwks);
    } catch {
      throw new ClientsUsageError('--jwks must be a JWK Set in JSON: \'{"keys":[{...}]}\'');
    }
  }
  // Keys by value or by reference, never both (RFC 7591 §2): naming one replaces the other.
  if (out.jwks !== undefined && out.jwks_uri === undefined) out.jwks_uri = null;
  if (out.jwks_uri !== undefined && out.jwks === undefined) out.jwks = null;
  // "none" clears the profile (an update needs a way to say so).
  if (options['security-profile'] === 'none') out.security_profile = null;
  if (options['require-par'] && options['no-require-par'])
    throw new ClientsUsageError('--require-par and --no-require-par contradict each other');
  if (options['require-par']) out.require_pushed_authorization_requests = true;
  if (options['no-require-par']) out.require_pushed_authorization_requests = false;
  if (options['skip-consent'] && options['no-skip-consent'])
    throw new ClientsUsageError('--skip-consent and --no-skip-consent contradict each other');
  if (options['skip-consent']) out.skip_consent = true;
  if (options['no-skip-consent']) out.skip_consent = false;
  // An empty --backchannel-logout-uri removes it.
  if (out.backchannel_logout_uri === '') out.backchannel_logout_uri = null;
  if (options['backchannel-logout-session-required'] && options['no-backchannel-logout-session-required'])
    throw new ClientsUsageError(
      '--backchannel-logout-session-required and --no-backchannel-logout-session-required contradict each other',
    );
  if (options['backchannel-logout-session-required']) out.backchannel_logout_session_required = true;
  if (options['no-backchannel-logout-session-required']) out.backchannel_logout_session_required = false;
  if (options['dpop-bound-access-tokens'] && options['no-dpop-bound-access-tokens'])
    throw new ClientsUsageError('--dpop-bound-access-tokens and --no-dpop-bound-access-tokens contradict each other');
  if (options['dpop-bound-access-tokens']) out.dpop_bound_access_tokens = true;
  if (options['no-dpop-bound-access-tokens']) out.dpop_bound_access_tokens = false;
  if (options['require-auth-time'] && options['no-require-auth-time'])
    throw new ClientsUsageError('--require-auth-time and --no-require-auth-time contradict each other');
  if (options['require-auth-time']) out.require_auth_time = true;
  if (options['no-require-auth-time']) out.require_auth_time = false;
  // A number on the command line is text; validation refuses anything that is not a whole number.
  if (typeof out.default_max_age === 'string' && /^\d{1,9}$/.test(out.default_max_age))
    out.default_max_age = Number(out.default_max_age);
  return out;
}

/** A client for display: every column but the hashes of its secret and registration access token. */
function view(client: Client): Record<string, unknown> {
  const { secret_hash: _hash, registration_access_token_hash: _registrationHash, ...rest } = client;
  return rest;
}

function describe(client: Client): string {
  const rows = Object.entries(view(client)).map(([key, value]) => {
    const shown =
      value instanceof Date
        ? value.toISOString()
        : Array.isArray(value)
          ? value.join(' ')
          : value === null
            ? '-'
            : typeof value === 'string'
              ? value
              : JSON.stringify(value);
    return `${key.padEnd(27)}${shown}`;
  });
  return rows.join('\n');
}

function secretNotice(clientId: string, secret: string): string {
  return `client_id:     ${clientId}\nclient_secret: ${secret}\nThe secret is shown only this once; store it now (Gatehouse keeps only its hash).`;
}

function requireId(args: string[], action: string): string {
  const id = args[1];
  if (!id) throw new ClientsUsageError(`clients ${action} needs a client_id`);
  if (args.length > 2) throw new ClientsUsageError(`unexpected argument: ${args[2]}`);
  return id;
}

/** Days of `--unused-days` (default 30): a whole number from 1. */
function unusedDays(value: unknown): number {
  if (value === undefined) return DEFAULT_UNUSED_DAYS;
  if (typeof value !== 'string' || !/^[1-9]\d{0,4}$/.test(value))
    throw new ClientsUsageError('--unused-days must be a whole number of days from 1 to 99999');
  return Number(value);
}

/** Runs one `gatehouse clients` action against an open database; returns what to print. */
export async function clientsCommand(args: string[], ctx: ClientsContext): Promise<string | object> {
  const { json, options } = ctx;
  const audit = commandAudit(ctx.handle);
  const service = new ClientAdmin(ctx.handle.db, ctx.config, { audit: audit.sink });
  const action = args[0] ?? 'list';
  if ((options.enable || options.disable) && action !== 'update')
    throw new ClientsUsageError('--enable and --disable go with clients update');
  if (options['unused-days'] !== undefined && action !== 'prune-metadata-documents')
    throw new ClientsUsageError('--unused-days goes with clients prune-metadata-documents');
  try {
    switch (action) {
      case 'create': {
        if (args.length > 1) throw new ClientsUsageError(`unexpected argument: ${args[1]}`);
        const clientId = typeof options['client-id'] === 'string' ? options['client-id'] : undefined;
        const metadata = metadataFromFlags(options);
        // A client that signs users in wants to stay signed in: without --grant-type it gets refresh tokens
        // too (rotated, reuse-detected: docs/refresh-tokens.md). A --grant-type list is taken as written.
        if (metadata.grant_types === undefined) metadata.grant_types = [...DEFAULT_GRANT_TYPES];
        const { client, secret } = await service.create(metadata, clientId ? { clientId } : {});
        if (json) return { client: view(client), ...(secret ? { client_secret: secret } : {}) };
        return `Created client "${client.name}".\n${secret ? secretNotice(client.client_id, secret) : `client_id: ${client.client_id} (public client: no secret)`}`;
      }
      case 'list': {
        const clients = await service.list();
        if (json) return clients.map(view);
        if (clients.length === 0) return 'no clients';
        return clients
          .map((c) =>
            [
              c.client_id,
              JSON.stringify(c.name),
              c.token_endpoint_auth_method,
              c.grant_types.join(','),
              c.source,
              c.disabled_at ? 'disabled' : 'enabled',
            ].join('  '),
          )
          .join('\n');
      }
      case 'show': {
        const id = requireId(args, action);
        const client = await service.find(id);
        if (!client) throw new Error(`no such client: ${id}`);
        return json ? view(client) : describe(client);
      }
      case 'update': {
        const id = requireId(args, action);
        if (options.enable && options.disable)
          throw new ClientsUsageError('--enable and --disable contradict each other');
        const changes = metadataFromFlags(options);
        if (Object.keys(changes).length === 0 && !options.enable && !options.disable) {
          throw new ClientsUsageError('clients update needs at least one flag to change');
        }
        let secret: string | null = null;
        let client = await service.find(id);
        if (!client) throw new Error(`no such client: ${id}`);
        if (Object.keys(changes).length > 0) ({ client, secret } = await service.update(id, changes));
        if (options.enable || options.disable) client = await service.setDisabled(id, options.disable === true);
        if (json) return { client: view(client), ...(secret ? { client_secret: secret } : {}) };
        const state = options.disable ? ' (disabled)' : options.enable ? ' (enabled)' : '';
        return `Updated client ${id}${state}.${secret ? `\nThe client is now confidential.\n${secretNotice(id, secret)}` : ''}`;
      }
      case 'delete': {
        const id = requireId(args, action);
        if (!(await service.delete(id))) throw new Error(`no such client: ${id}`);
        return json ? { deleted: id } : `Deleted client ${id}.`;
      }
      case 'rotate-secret': {
        const id = requireId(args, action);
        const { client, secret } = await service.rotateSecret(id);
        if (json) return { client_id: client.client_id, client_secret: secret };
        return `New secret for client ${id}; the old one no longer works.\n${secretNotice(id, secret)}`;
      }
      case 'prune-metadata-documents': {
        if (args.length > 1) throw new ClientsUsageError(`unexpected argument: ${args[1]}`);
        const days = unusedDays(options['unused-days']);
        const deleted = await service.pruneClientIdDocumentClients(days * 86_400);
        if (json) return { deleted };
        if (deleted.length === 0)
          return `No metadata-document client to delete (unused for ${days} days, nothing live).`;
        return [
          ...deleted.map((id) => `deleted ${id}`),
          `Deleted ${deleted.length} metadata-document client(s) unused for ${days} days.`,
        ].join('\n');
      }
      default:
        throw new ClientsUsageError(`unknown clients action: ${action}`);
    }
  } catch (err) {
    if (err instanceof ClientMetadataError) {
      const flag = FLAGS[err.field.replace(/\[\d+\]$/, '')];
      throw new Error(`invalid client: ${err.field}${flag ? ` (--${flag})` : ''}: ${err.reason}`, { cause: err });
    }
    throw err;
  } finally {
    await audit.close();
  }
}

/** Opens the database (migrating it when AUTO_MIGRATE is on, as the server would), runs the action, closes. */
export async function runClientsCommand(
  config: Readonly<Config>,
  args: string[],
  options: Record<string, unknown>,
): Promise<string | object> {
  const handle = await openForCommand(config, `clients ${args[0] ?? ''}`.trim());
  try {
    if (config.database.autoMigrate) await migrateUp(handle.migrationRoot ?? handle.root, config.database.schema);
    return await clientsCommand(args, { config, handle, json: options.json === true, options });
  } finally {
    await handle.close();
  }
}
