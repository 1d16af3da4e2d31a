/**
 * Gatehouse's configuration, read once at start: the convict schema (schema.ts) with its formats
 * (formats.ts), the checks across settings and for production (checks.ts), loading from the environment
 * and `<NAME>_FILE` secrets (load.ts), and the policy values parsed once from the list settings (policy.ts).
 * Code at the edge reads the loaded config from `app.config`; code below it gets values as arguments.
 */
export { isPublishedSecret, PUBLISHED_SECRETS, secretWeakness } from './checks.js';
export {
  type Config,
  type ConfigSource,
  type LoadedConfig,
  ConfigError,
  describeConfig,
  loadConfig,
  redactDatabaseUrl,
} from './load.js';
export { type ClaimScope, type Policy, type ResourcePolicy, type ScopePolicy, issuerIsHttps } from './policy.js';
export { type SchemaLeaf, type Settings, type SigningAlg, schema, schemaLeaves } from './schema.js';
