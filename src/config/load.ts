import { readFileSync } from 'node:fs';
import convict from 'convict';
import { DomainError } from '../lib/errors.js';
import { canonicalUrl } from '../lib/syntax.js';
import { crossFieldProblems, productionProblems, publishedSecretProblems } from './checks.js';
import { addFormats } from './formats.js';
import { type Policy, readPolicy } from './policy.js';
import { type Settings, schema, schemaLeaves } from './schema.js';

/** The typed configuration: every setting of the schema, plus the policy values parsed from them once at start. */
export type Config = Settings & { policy: Policy };

/** Where a setting's value came from. */
export type ConfigSource = 'default' | 'env' | 'file';

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Per environment variable name: where its value came from. */
  sources: Record<string, ConfigSource>;
}

/** A configuration that cannot start: one message per problem, each naming its variable. */
export class ConfigError extends DomainError {
  constructor(readonly problems: string[]) {
    super('misconfigured', `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Reads `<NAME>_FILE` for secrets (Docker secrets); returns the env with the files' contents filled in. */
function resolveFileSecrets(
  env: Record<string, string | undefined>,
  problems: string[],
  sources: Record<string, ConfigSource>,
): Record<string, string | undefined> {
  const out = { ...env };
  for (const leaf of schemaLeaves()) {
    if (!leaf.sensitive) continue;
    const fileVar = `${leaf.env}_FILE`;
    const file = env[fileVar];
    if (file === undefined || file === '') continue;
    if (env[leaf.env] !== undefined && env[leaf.env] !== '') {
      problems.push(`${leaf.env}: set either ${leaf.env} or ${fileVar}, not both`);
      continue;
    }
    try {
      out[leaf.env] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      sources[leaf.env] = 'file';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push(`${fileVar}: cannot read ${file} (${code})`);
    }
  }
  return out;
}

/** Loads, validates and freezes the configuration from an environment; throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): LoadedConfig {
  addFormats();
  const problems: string[] = [];
  const sources: Record<string, ConfigSource> = {};
  const leaves = schemaLeaves();
  for (const leaf of leaves) sources[leaf.env] = env[leaf.env] !== undefined ? 'env' : 'default';
  const resolved = resolveFileSecrets(env, problems, sources);
  // An empty variable means "use the default", as in most twelve-factor tools.
  const effective: Record<string, string> = {};
  for (const leaf of leaves) {
    const value = resolved[leaf.env];
    if (value !== undefined && value !== '') effective[leaf.env] = value;
    else if (sources[leaf.env] === 'env') sources[leaf.env] = 'default';
  }

  const conf = convict<Settings>(schema, { env: effective, args: [] });
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    const byPath = new Map(leaves.map((l) => [l.path, l]));
    for (const line of String((err as Error).message).split('\n')) {
      const match = /^([\w.]+): (.*)$/.exec(line.trim());
      const leaf = match ? byPath.get(match[1]!) : undefined;
      if (!match || !leaf) {
        if (line.trim()) problems.push(line.trim());
        continue;
      }
      const reason = match[2]!.replace(/: value was .*$/, '');
      const shown = leaf.sensitive ? '' : `: value was ${JSON.stringify(effective[leaf.env] ?? leaf.default)}`;
      problems.push(`${leaf.env}: ${reason}${shown}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const settings = conf.getProperties();
  const policy = readPolicy(settings);
  problems.push(...crossFieldProblems(settings, policy));
  if (settings.nodeEnv === 'production') problems.push(...productionProblems(settings));
  else problems.push(...publishedSecretProblems(settings));
  if (problems.length > 0) throw new ConfigError(problems);

  settings.issuer = settings.issuer === '' ? `http://localhost:${settings.server.port}` : canonicalUrl(settings.issuer);
  return { config: deepFreeze({ ...settings, policy }), sources };
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const v of Object.values(value)) if (v && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}

/** Each setting's effective value for display, secrets redacted, with its source. */
export function describeConfig(loaded: LoadedConfig): Array<{ env: string; value: unknown; source: ConfigSource }> {
  return schemaLeaves().map((leaf) => {
    const value = leaf.path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], loaded.config);
    const redacted = leaf.sensitive && value !== '' ? '[redacted]' : value;
    return {
      env: leaf.env,
      value: leaf.env === 'DATABASE_URL' ? redactDatabaseUrl(String(value)) : redacted,
      source: loaded.sources[leaf.env] ?? 'default',
    };
  });
}

/** A Postgres URL with its password hidden, for logs and `gatehouse config`. */
export function redactDatabaseUrl(value: string): string {
  if (value === '') return '';
  try {
    const url = new URL(value);
    if (url.password) url.password = 'redacted';
    for (const key of ['password', 'sslpassword']) if (url.searchParams.has(key)) url.searchParams.set(key, 'redacted');
    return url.toString();
  } catch {
    return '[redacted]';
  }
}
