import type { Db } from '../../db/database.js';
import type { AuditSink } from '../audit/audit-log.js';
import { ClientAdmin } from './admin.js';
import { ClientRegistry, type ClientRegistryConfig, type ClientRegistryOptions } from './registry.js';
import { ClientUsage, type ClientUsageOptions } from './usage.js';

export { type ChangedBy, ClientAdmin, type ClientWithSecret } from './admin.js';
export { ClientServiceError } from './errors.js';
export { ClientRegistration } from './registration.js';
export { ClientRegistry, type ClientResolution } from './registry.js';
export { ClientUsage } from './usage.js';

/** The client units one process runs with, wired together: admin writes drop the registry's cached copies. */
export interface Clients {
  /** The read path: cache and client-id document resolution (token endpoint, /authorize, pages). */
  registry: ClientRegistry;
  /** Admin writes (admin API, CLI, registration). */
  admin: ClientAdmin;
  /** Usage recording (last_used_at). */
  usage: ClientUsage;
}

/** Builds the registry, admin writes and usage recording over one database, sharing one clock and logger. */
export function createClients(
  db: Db,
  config: ClientRegistryConfig,
  options: ClientRegistryOptions & ClientUsageOptions & { audit?: AuditSink } = {},
): Clients {
  const registry = new ClientRegistry(db, config, options);
  const admin = new ClientAdmin(db, config, {
    changes: registry,
    ...(options.now ? { now: options.now } : {}),
    ...(options.audit ? { audit: options.audit } : {}),
  });
  const usage = new ClientUsage(db, options);
  return { registry, admin, usage };
}
