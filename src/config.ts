import { readFileSync } from 'node:fs';
import convict from 'convict';

/** Every setting Gatehouse has: one convict schema, read only through `loadConfig`. */
export const schema = {
  nodeEnv: {
    doc: 'Runtime mode. `production` turns on the strict checks (https issuer, strong secrets).',
    format: ['production', 'development', 'test'],
    default: 'development',
    env: 'NODE_ENV',
  },
  issuer: {
    doc: 'The public URL of this server, exactly as clients see it (`iss` of every token). Empty means `http://localhost:<PORT>` outside production; required in production.',
    format: 'issuer-url',
    default: '',
    env: 'ISSUER',
  },
  server: {
    host: {
      doc: 'Address the public listener binds to. Use `0.0.0.0` in a container.',
      format: 'host-address',
      default: '127.0.0.1',
      env: 'HOST',
    },
    port: {
      doc: 'Port of the public listener.',
      format: 'port',
      default: 4000,
      env: 'PORT',
    },
    trustProxy: {
      doc: 'Whether to trust `X-Forwarded-*` headers: `false`, `true`, a hop count, or a comma-separated list of proxy addresses/CIDRs.',
      format: 'trust-proxy',
      default: 'false',
      env: 'TRUST_PROXY',
    },
    bodyLimit: {
      doc: 'Largest request body accepted, in bytes; larger bodies get 413.',
      format: 'positive-int',
      default: 16384,
      env: 'BODY_LIMIT_BYTES',
    },
    rateLimit: {
      doc: 'Requests per minute one client address may make to the unauthenticated browser endpoints (/authorize, /sign-in/complete, /consent, /register); 0 turns the limit off. Per process: put a shared limiter in front for a hard cap across replicas.',
      format: 'non-negative-int',
      default: 300,
      env: 'RATE_LIMIT_PER_MINUTE',
    },
    shutdownTimeout: {
      doc: 'Seconds to let in-flight requests finish after SIGTERM/SIGINT before the process exits anyway.',
      format: 'positive-int',
      default: 10,
      env: 'SHUTDOWN_TIMEOUT_SECONDS',
    },
  },
  database: {
    url: {
      doc: 'Postgres connection URL (`postgres://user:pass@host:5432/db`). Empty means the embedded PGlite database in `DATA_DIR`.',
      format: 'postgres-url',
      default: '',
      env: 'DATABASE_URL',
      sensitive: true,
    },
    poolMax: {
      doc: 'Largest number of Postgres connections this process opens.',
      format: 'positive-int',
      default: 10,
      env: 'DATABASE_POOL_MAX',
    },
    schema: {
      doc: "Postgres schema holding Gatehouse's tables, so it can share a database with the host app.",
      format: 'sql-identifier',
      default: 'gatehouse',
      env: 'DATABASE_SCHEMA',
    },
    dataDir: {
      doc: 'Data directory of the embedded PGlite database (used when `DATABASE_URL` is empty). `memory://` keeps it in memory only.',
      format: 'non-empty-string',
      default: './data/pglite',
      env: 'DATA_DIR',
    },
    preparedStatements: {
      doc: "Send the token endpoint's hot statements (code redemption, refresh rotation) as named prepared statements, parsed and planned once per connection. Turn off behind a transaction-pooling pgbouncer older than 1.21 or with `max_prepared_statements = 0`.",
      format: 'strict-boolean',
      default: true,
      env: 'DATABASE_PREPARED_STATEMENTS',
    },
    autoMigrate: {
      doc: 'Apply pending migrations at start, under a Postgres advisory lock so replicas starting together migrate once.',
      format: 'strict-boolean',
      default: true,
      env: 'AUTO_MIGRATE',
    },
  },
  log: {
    level: {
      doc: 'Log level.',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
    pretty: {
      doc: 'Human-readable logs instead of JSON lines (for local development).',
      format: 'strict-boolean',
      default: false,
      env: 'LOG_PRETTY',
    },
  },
  keys: {
    encryptionSecret: {
      doc: 'Secret that encrypts signing keys at rest (AES-256-GCM, key derived with HKDF-SHA-256). At least 32 characters of real entropy; required in production. Outside production an insecure development secret is used when empty.',
      format: String,
      default: '',
      env: 'KEY_ENCRYPTION_SECRET',
      sensitive: true,
    },
    signingAlg: {
      doc: 'Algorithm of generated signing keys.',
      format: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      default: 'ES256',
      env: 'SIGNING_ALG',
    },
    files: {
      doc: "Comma-separated paths of private signing keys (PEM PKCS#8 or JWK JSON) to use instead of generated keys. The first signs; the others are published in the JWKS only. Each file's algorithm is taken from the JWK `alg`, or `SIGNING_ALG` for PEM.",
      format: String,
      default: '',
      env: 'SIGNING_KEY_FILES',
    },
    rotationDelay: {
      doc: 'Seconds a rotated-in key is published in the JWKS before it signs anything; must exceed JWKS_MAX_AGE_SECONDS so caches see it first.',
      format: 'positive-int',
      default: 3600,
      env: 'KEY_ROTATION_DELAY_SECONDS',
    },
    jwksMaxAge: {
      doc: 'Cache-Control max-age of the JWKS document, in seconds.',
      format: 'positive-int',
      default: 300,
      env: 'JWKS_MAX_AGE_SECONDS',
    },
    cacheTtl: {
      doc: 'Seconds a process keeps the key set in memory before re-reading it (how fast replicas see a rotation).',
      format: 'positive-int',
      default: 30,
      env: 'KEY_CACHE_TTL_SECONDS',
    },
  },
  tokens: {
    accessTokenTtl: {
      doc: 'Lifetime of access tokens, in seconds.',
      format: 'positive-int',
      default: 3600,
      env: 'ACCESS_TOKEN_TTL_SECONDS',
    },
    clockSkew: {
      doc: 'Clock skew tolerated when checking `iat`/`exp` of incoming JWTs, in seconds.',
      format: 'non-negative-int',
      default: 30,
      env: 'CLOCK_SKEW_SECONDS',
    },
  },
  scopes: {
    catalogue: {
      doc: 'The scope catalogue: a JSON object of scope name to the description shown on the consent page (`{"read":"Read your data"}`), or space-separated names.',
      format: 'scope-catalogue',
      default: '',
      env: 'SCOPES',
    },
    enforce: {
      doc: 'Refuse requested scopes that are not in the catalogue or not allowed for the client.',
      format: 'strict-boolean',
      default: true,
      env: 'ENFORCE_SCOPES',
    },
  },
  resources: {
    list: {
      doc: 'Resource indicators (RFC 8707) tokens may be issued for: comma- or space-separated absolute URIs without fragment. Each becomes an access token `aud`.',
      format: 'resource-list',
      default: '',
      env: 'RESOURCES',
    },
    defaultResource: {
      doc: 'Resource used when a request names none; must be one of RESOURCES. Empty means the first of RESOURCES.',
      format: 'resource-list',
      default: '',
      env: 'DEFAULT_RESOURCE',
    },
  },
  handshake: {
    signInUrl: {
      doc: "The host app's sign-in URL. Gatehouse sends the browser there with `?login_request=<JWT>` when a user must sign in.",
      format: 'optional-url',
      default: '',
      env: 'SIGN_IN_URL',
    },
    hostId: {
      doc: "The host app's identifier: `aud` of login_request, required `iss` of login_response.",
      format: String,
      default: 'host',
      env: 'HOST_ID',
    },
    secret: {
      doc: 'Shared HS256 secret for the handshake (at least 32 bytes). Set this, or HOST_JWKS_URL / HOST_PUBLIC_KEY_FILE for asymmetric host keys.',
      format: String,
      default: '',
      env: 'HANDSHAKE_SECRET',
      sensitive: true,
    },
    hostJwksUrl: {
      doc: "JWKS URL of the host app's public keys (ES256, RS256 or EdDSA) for verifying login_response.",
      format: 'optional-url',
      default: '',
      env: 'HOST_JWKS_URL',
    },
    hostPublicKeyFile: {
      doc: "Path of the host app's public key (PEM SPKI or JWK) for verifying login_response.",
      format: String,
      default: '',
      env: 'HOST_PUBLIC_KEY_FILE',
    },
    responseMaxAge: {
      doc: 'Longest lifetime (exp - iat) Gatehouse accepts for a login_response, in seconds.',
      format: 'positive-int',
      default: 300,
      env: 'LOGIN_RESPONSE_MAX_AGE_SECONDS',
    },
  },
  flow: {
    requestTtl: {
      doc: 'Seconds a pending authorization request (sign-in and consent) stays valid.',
      format: 'positive-int',
      default: 600,
      env: 'AUTHORIZATION_REQUEST_TTL_SECONDS',
    },
    codeTtl: {
      doc: 'Lifetime of authorization codes, in seconds.',
      format: 'positive-int',
      default: 60,
      env: 'AUTHORIZATION_CODE_TTL_SECONDS',
    },
    refreshTokenTtl: {
      doc: 'Lifetime of a refresh-token chain, in seconds, absolute from the code redemption that started it.',
      format: 'positive-int',
      default: 2592000,
      env: 'REFRESH_TOKEN_TTL_SECONDS',
    },
    refreshGrace: {
      doc: 'Seconds after a rotation during which presenting the old refresh token is treated as a client retry (refused without revoking the chain) rather than reuse.',
      format: 'non-negative-int',
      default: 0,
      env: 'REFRESH_TOKEN_GRACE_SECONDS',
    },
    sessionIdleTtl: {
      doc: 'A Gatehouse browser session ends after this many seconds without use.',
      format: 'positive-int',
      default: 86400,
      env: 'SESSION_IDLE_TTL_SECONDS',
    },
    sessionAbsoluteTtl: {
      doc: 'A Gatehouse browser session ends this many seconds after sign-in, however active.',
      format: 'positive-int',
      default: 1209600,
      env: 'SESSION_ABSOLUTE_TTL_SECONDS',
    },
  },
  registration: {
    enabled: {
      doc: 'Dynamic client registration (RFC 7591) at POST /register, with RFC 7592 management. Off: the route is 404 and metadata omits registration_endpoint.',
      format: 'strict-boolean',
      default: false,
      env: 'DCR_ENABLED',
    },
    initialAccessToken: {
      doc: 'When set, POST /register requires `Authorization: Bearer <this token>` (RFC 7591 §3).',
      format: String,
      default: '',
      env: 'DCR_INITIAL_ACCESS_TOKEN',
      sensitive: true,
    },
    alwaysReturnSecret: {
      doc: 'Issue a client secret even to clients registering with token_endpoint_auth_method "none" (a workaround for clients that misbehave without one).',
      format: 'strict-boolean',
      default: false,
      env: 'DCR_ALWAYS_RETURN_CLIENT_SECRET',
    },
  },
  clients: {
    file: {
      doc: 'Path of a JSON file of clients applied at start (created or updated idempotently). Secrets appear only as `secret_hash` or `secret_file`.',
      format: String,
      default: '',
      env: 'CLIENTS_FILE',
    },
    nativeRedirectSchemes: {
      doc: 'Single-label private-use URI schemes native clients may use in redirect URIs besides reverse-domain ones (RFC 8252 §7.1 asks apps for a reverse-domain scheme, but some MCP clients register e.g. `cursor://…`): comma- or space-separated scheme names, e.g. `cursor`. Such clients always see the consent page. Schemes a browser gives a meaning (javascript, data, file, blob, …) are refused.',
      format: 'scheme-list',
      default: '',
      env: 'NATIVE_REDIRECT_SCHEMES',
    },
    cacheTtl: {
      doc: 'Seconds a process keeps a client in memory before re-reading it (how fast replicas see a change).',
      format: 'positive-int',
      default: 30,
      env: 'CLIENT_CACHE_TTL_SECONDS',
    },
  },
  clientIdMetadataDocuments: {
    enabled: {
      doc: "OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a `client_id` that is an https URL with a path is resolved by fetching the client's metadata from that URL. Off: such ids are looked up like any other, and metadata omits `client_id_metadata_document_supported`.",
      format: 'strict-boolean',
      default: false,
      env: 'CIMD_ENABLED',
    },
    fetchTimeout: {
      doc: 'Longest time a metadata document fetch may take (connect, TLS, response and body), in milliseconds.',
      format: 'positive-int',
      default: 5000,
      env: 'CIMD_FETCH_TIMEOUT_MS',
    },
    maxBytes: {
      doc: 'Largest metadata document read, in bytes; a longer response is refused (the draft recommends 5 KB).',
      format: 'positive-int',
      default: 5120,
      env: 'CIMD_MAX_BYTES',
    },
    cacheMin: {
      doc: 'Shortest time a valid metadata document is cached, in seconds, whatever its Cache-Control max-age or Expires say (`no-store` and `no-cache` are honoured: such documents are not cached).',
      format: 'positive-int',
      default: 60,
      env: 'CIMD_CACHE_MIN_SECONDS',
    },
    cacheMax: {
      doc: 'Longest time a valid metadata document is cached, in seconds, whatever its cache headers say.',
      format: 'positive-int',
      default: 86400,
      env: 'CIMD_CACHE_MAX_SECONDS',
    },
    cacheDefault: {
      doc: 'How long a valid metadata document without Cache-Control max-age or Expires is cached, in seconds.',
      format: 'positive-int',
      default: 300,
      env: 'CIMD_CACHE_DEFAULT_SECONDS',
    },
    allowPrivateAddresses: {
      doc: 'Development only: allow metadata document fetches to private, loopback, link-local and other special-use addresses. Refused in production (SSRF).',
      format: 'strict-boolean',
      default: false,
      env: 'CIMD_ALLOW_PRIVATE_ADDRESSES',
    },
    caFile: {
      doc: 'Path of a PEM file of extra CA certificates trusted (besides the system roots) when fetching metadata documents, for clients served under an internal CA.',
      format: String,
      default: '',
      env: 'CIMD_CA_FILE',
    },
  },
  admin: {
    port: {
      doc: 'Port of the admin listener (admin API and `/metrics`), kept off the public internet. 0 turns the admin listener off.',
      format: 'port',
      default: 0,
      env: 'ADMIN_PORT',
    },
    host: {
      doc: 'Address the admin listener binds to. Only widen it (`0.0.0.0` in a container) on a network the public cannot reach.',
      format: 'host-address',
      default: '127.0.0.1',
      env: 'ADMIN_HOST',
    },
    token: {
      doc: 'Bearer token every admin API request must carry (`Authorization: Bearer …`); required, and at least 32 random characters, when `ADMIN_PORT` is set. `/metrics` and `/healthz` on the admin listener do not need it.',
      format: String,
      default: '',
      env: 'ADMIN_TOKEN',
      sensitive: true,
    },
  },
  janitor: {
    interval: {
      doc: 'Seconds between sweeps that delete expired authorization requests, codes, refresh tokens and sessions (one replica at a time, under a Postgres advisory lock). 0 turns the periodic sweep off (run `gatehouse janitor` from a scheduler instead).',
      format: 'non-negative-int',
      default: 600,
      env: 'JANITOR_INTERVAL_SECONDS',
    },
    retention: {
      doc: 'Seconds an expired or revoked row is kept before a sweep deletes it (for investigating a recent incident).',
      format: 'non-negative-int',
      default: 3600,
      env: 'JANITOR_RETENTION_SECONDS',
    },
  },
} as const;

/** The typed, frozen configuration object. */
export interface Config {
  nodeEnv: 'production' | 'development' | 'test';
  issuer: string;
  server: {
    host: string;
    port: number;
    trustProxy: string;
    bodyLimit: number;
    rateLimit: number;
    shutdownTimeout: number;
  };
  database: {
    url: string;
    poolMax: number;
    schema: string;
    dataDir: string;
    preparedStatements: boolean;
    autoMigrate: boolean;
  };
  log: { level: string; pretty: boolean };
  keys: {
    encryptionSecret: string;
    signingAlg: SigningAlg;
    files: string;
    rotationDelay: number;
    jwksMaxAge: number;
    cacheTtl: number;
  };
  tokens: { accessTokenTtl: number; clockSkew: number };
  scopes: { catalogue: string; enforce: boolean };
  resources: { list: string; defaultResource: string };
  clients: { file: string; nativeRedirectSchemes: string; cacheTtl: number };
  registration: { enabled: boolean; initialAccessToken: string; alwaysReturnSecret: boolean };
  clientIdMetadataDocuments: {
    enabled: boolean;
    fetchTimeout: number;
    maxBytes: number;
    cacheMin: number;
    cacheMax: number;
    cacheDefault: number;
    allowPrivateAddresses: boolean;
    caFile: string;
  };
  handshake: {
    signInUrl: string;
    hostId: string;
    secret: string;
    hostJwksUrl: string;
    hostPublicKeyFile: string;
    responseMaxAge: number;
  };
  flow: {
    requestTtl: number;
    codeTtl: number;
    refreshTokenTtl: number;
    refreshGrace: number;
    sessionIdleTtl: number;
    sessionAbsoluteTtl: number;
  };
  admin: { port: number; host: string; token: string };
  janitor: { interval: number; retention: number };
}

export type SigningAlg = 'ES256' | 'RS256' | 'PS256' | 'EdDSA';

/** Schemes that name something other than an app, never acceptable as a private-use redirect scheme. */
export const RESERVED_SCHEMES: ReadonlySet<string> = new Set([
  'http',
  'https',
  'javascript',
  'data',
  'vbscript',
  'file',
  'blob',
  'about',
  'filesystem',
  'view-source',
  'ws',
  'wss',
  'ftp',
  'mailto',
  'tel',
  'sms',
  'intent',
  'content',
  'chrome',
  'edge',
  'resource',
  'urn',
]);

/** Parses NATIVE_REDIRECT_SCHEMES: scheme names, lower-cased, without a trailing colon. */
export function parseSchemeList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((item) => item.toLowerCase().replace(/:(\/\/)?$/, ''));
}

/** Parses SCOPES: a JSON object of name to description, or space-separated names. */
export function parseScopeCatalogue(value: string): Map<string, string> {
  const trimmed = value.trim();
  if (trimmed === '') return new Map();
  if (trimmed.startsWith('{')) {
    const parsed: unknown = JSON.parse(trimmed);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('must be a JSON object');
    return new Map(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  }
  return new Map(trimmed.split(/\s+/).map((name) => [name, name]));
}

/** RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Parses RESOURCES into canonical URLs. */
export function parseResourceList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((v) => canonicalUrl(v));
}

/** Where a setting's value came from. */
export type ConfigSource = 'default' | 'env' | 'file';

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Per environment variable name: where its value came from. */
  sources: Record<string, ConfigSource>;
}

/** A configuration that cannot start: one message per problem, each naming its variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const WEAK_SECRETS = /^(change[-_ ]?me|secret|password|gatehouse|test|dev(elopment)?|example)/i;

function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname) || hostname.endsWith('.localhost');
}

function coerceBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
}

let formatsAdded = false;
function addFormats(): void {
  if (formatsAdded) return;
  formatsAdded = true;
  convict.addFormat({
    name: 'strict-boolean',
    coerce: coerceBoolean,
    validate(value: unknown) {
      if (typeof value !== 'boolean') throw new Error('must be true or false');
    },
  });
  convict.addFormat({
    name: 'positive-int',
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
        throw new Error('must be a positive integer');
      }
    },
  });
  convict.addFormat({
    name: 'non-negative-int',
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new Error('must be a non-negative integer');
      }
    },
  });
  convict.addFormat({
    name: 'scope-catalogue',
    validate(value: unknown) {
      let catalogue: Map<string, string>;
      try {
        catalogue = parseScopeCatalogue(String(value));
      } catch (err) {
        throw new Error(
          `must be a JSON object of scope to description, or space-separated names (${(err as Error).message})`,
        );
      }
      for (const name of catalogue.keys()) {
        if (!SCOPE_TOKEN.test(name)) throw new Error(`"${name}" is not a valid scope name (RFC 6749 §3.3)`);
      }
    },
  });
  convict.addFormat({
    name: 'resource-list',
    validate(value: unknown) {
      for (const item of String(value)
        .split(/[\s,]+/)
        .filter(Boolean)) {
        let url: URL;
        try {
          url = new URL(item);
        } catch {
          throw new Error(`"${item}" is not an absolute URI (RFC 8707 §2)`);
        }
        if (item.includes('#') || url.hash) throw new Error(`"${item}" must not have a fragment (RFC 8707 §2)`);
      }
    },
  });
  convict.addFormat({
    name: 'scheme-list',
    validate(value: unknown) {
      for (const item of parseSchemeList(String(value))) {
        if (!/^[a-z][a-z0-9+-]*$/.test(item))
          throw new Error(
            `"${item}" is not a single-label URI scheme name (letters, digits, + and -; reverse-domain schemes need no setting)`,
          );
        if (RESERVED_SCHEMES.has(item))
          throw new Error(`"${item}" is a scheme browsers or the OS give a meaning; it cannot identify an app`);
      }
    },
  });
  convict.addFormat({
    name: 'non-empty-string',
    validate(value: unknown) {
      if (typeof value !== 'string' || value.trim() === '') throw new Error('must not be empty');
    },
  });
  convict.addFormat({
    name: 'sql-identifier',
    validate(value: unknown) {
      if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
        throw new Error('must be a lower-case SQL identifier (letters, digits, underscore; at most 63)');
      }
    },
  });
  convict.addFormat({
    name: 'host-address',
    validate(value: unknown) {
      if (typeof value !== 'string' || !/^[A-Za-z0-9.:_-]+$/.test(value)) {
        throw new Error('must be a host name or IP address');
      }
    },
  });
  convict.addFormat({
    name: 'trust-proxy',
    validate(value: unknown) {
      if (typeof value !== 'string') throw new Error('must be a string');
      if (/^(true|false|\d+)$/.test(value)) return;
      const parts = value.split(',').map((s) => s.trim());
      if (parts.some((p) => !/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(p) && !/^(loopback|linklocal|uniquelocal)$/.test(p))) {
        throw new Error('must be true, false, a hop count, or a comma-separated list of addresses/CIDRs');
      }
    },
  });
  convict.addFormat({
    name: 'issuer-url',
    validate(value: unknown) {
      if (value === '') return;
      if (typeof value !== 'string') throw new Error('must be a URL');
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new Error('must be an absolute URL');
      }
      // RFC 8414 §2: https, no query or fragment.
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
      if (url.search || url.hash || value.includes('#') || value.includes('?')) {
        throw new Error('must not have a query or fragment (RFC 8414 §2)');
      }
      if (url.username || url.password) throw new Error('must not contain credentials');
    },
  });
  convict.addFormat({
    name: 'optional-url',
    validate(value: unknown) {
      if (value === '') return;
      let url: URL;
      try {
        url = new URL(String(value));
      } catch {
        throw new Error('must be an absolute http(s) URL');
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an absolute http(s) URL');
    },
  });
  convict.addFormat({
    name: 'postgres-url',
    validate(value: unknown) {
      if (value === '') return;
      if (typeof value !== 'string') throw new Error('must be a postgres:// URL');
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new Error('must be a postgres:// URL');
      }
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
        throw new Error('must be a postgres:// or postgresql:// URL');
      }
      if (!url.hostname && !url.searchParams.get('host')) throw new Error('must name a host');
    },
  });
}

interface Leaf {
  path: string;
  env: string;
  sensitive: boolean;
  doc: string;
  format: unknown;
  default: unknown;
}

/** The schema's settings in order, each with its path and environment variable. */
export function schemaLeaves(node: Record<string, unknown> = schema, prefix = ''): Leaf[] {
  const leaves: Leaf[] = [];
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const v = value as Record<string, unknown>;
    if (typeof v.env === 'string') {
      leaves.push({
        path,
        env: v.env,
        sensitive: v.sensitive === true,
        doc: String(v.doc),
        format: v.format,
        default: v.default,
      });
    } else {
      leaves.push(...schemaLeaves(v, path));
    }
  }
  return leaves;
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

/** Judges a secret's strength: at least 32 characters and not a placeholder or low-variety string. */
export function secretWeakness(secret: string): string | null {
  if (secret.length < 32) return 'must be at least 32 characters';
  if (WEAK_SECRETS.test(secret)) return 'looks like a placeholder; generate one with `openssl rand -base64 32`';
  if (new Set(secret).size < 12)
    return 'has too little variety to be random; generate one with `openssl rand -base64 32`';
  return null;
}

function crossFieldProblems(config: Config): string[] {
  const problems: string[] = [];
  // A verifier's cached JWKS may be max-age old, and a replica's own key set cacheTtl old: a new key must
  // be published longer than both together before it signs.
  if (config.keys.rotationDelay <= config.keys.jwksMaxAge + config.keys.cacheTtl) {
    problems.push(
      'KEY_ROTATION_DELAY_SECONDS: must be longer than JWKS_MAX_AGE_SECONDS + KEY_CACHE_TTL_SECONDS, so every cache sees a new key before it signs',
    );
  }
  const h = config.handshake;
  if (h.secret !== '' && Buffer.byteLength(h.secret) < 32)
    problems.push('HANDSHAKE_SECRET: must be at least 32 bytes (HS256, RFC 7518 §3.2)');
  const hostKeys = [h.secret, h.hostJwksUrl, h.hostPublicKeyFile].filter((v) => v !== '').length;
  if (hostKeys > 1)
    problems.push('HANDSHAKE_SECRET: set only one of HANDSHAKE_SECRET, HOST_JWKS_URL and HOST_PUBLIC_KEY_FILE');
  if (h.signInUrl !== '' && hostKeys === 0) {
    problems.push(
      'SIGN_IN_URL: needs a host key to verify sign-in answers: HANDSHAKE_SECRET, HOST_JWKS_URL or HOST_PUBLIC_KEY_FILE',
    );
  }
  const cimd = config.clientIdMetadataDocuments;
  if (cimd.cacheMin > cimd.cacheMax) problems.push('CIMD_CACHE_MIN_SECONDS: must not exceed CIMD_CACHE_MAX_SECONDS');
  if (cimd.cacheDefault < cimd.cacheMin || cimd.cacheDefault > cimd.cacheMax) {
    problems.push('CIMD_CACHE_DEFAULT_SECONDS: must lie between CIMD_CACHE_MIN_SECONDS and CIMD_CACHE_MAX_SECONDS');
  }
  if (config.flow.sessionIdleTtl > config.flow.sessionAbsoluteTtl) {
    problems.push('SESSION_IDLE_TTL_SECONDS: must not exceed SESSION_ABSOLUTE_TTL_SECONDS');
  }
  // RFC 6750 §2.1 b64token: what /register accepts after "Bearer".
  if (
    config.registration.initialAccessToken !== '' &&
    !/^[A-Za-z0-9\-._~+/]+=*$/.test(config.registration.initialAccessToken)
  ) {
    problems.push(
      'DCR_INITIAL_ACCESS_TOKEN: must be an RFC 6750 b64token (letters, digits and -._~+/, then optional =), as a Bearer header carries it',
    );
  }
  // setTimeout holds at most 2^31-1 ms; a longer interval would fire at once, over and over.
  if (config.janitor.interval > 2_000_000)
    problems.push('JANITOR_INTERVAL_SECONDS: must be at most 2000000 (about 23 days)');
  if (config.admin.port !== 0) {
    // The admin token is a standing credential for every client and key: the same bar as other secrets, everywhere.
    const adminWeakness =
      config.admin.token === '' ? 'required when ADMIN_PORT is set' : secretWeakness(config.admin.token);
    if (adminWeakness) problems.push(`ADMIN_TOKEN: ${adminWeakness}`);
    // RFC 6750 §2.1 b64token-like: what an Authorization header can carry intact.
    else if (!/^[\x21-\x7e]+$/.test(config.admin.token))
      problems.push('ADMIN_TOKEN: must be visible ASCII without spaces (it travels in an Authorization header)');
    if (config.admin.port === config.server.port)
      problems.push('ADMIN_PORT: must differ from PORT (the admin listener is a separate listener)');
  }
  const resources = parseResourceList(config.resources.list);
  const defaults = parseResourceList(config.resources.defaultResource);
  // login_request JWTs are signed with the access-token keys and carry aud = HOST_ID: were HOST_ID also a
  // resource, a resource server that skipped the typ check would take one for an access token (RFC 8725 §3.11).
  if (h.hostId !== '' && (resources.includes(h.hostId) || resources.includes(canonicalOrSelf(h.hostId))))
    problems.push(
      'HOST_ID: must not be one of RESOURCES (sign-in requests and access tokens must never share an audience)',
    );
  if (defaults.length > 1) problems.push('DEFAULT_RESOURCE: must be a single URI');
  else if (defaults[0] && !resources.includes(defaults[0])) problems.push('DEFAULT_RESOURCE: must be one of RESOURCES');
  return problems;
}

function productionProblems(config: Config): string[] {
  const problems: string[] = [];
  if (config.issuer === '') {
    problems.push('ISSUER: required in production');
  } else {
    const url = new URL(config.issuer);
    // RFC 9700 §4.1 / OAuth 2.1 §1.5: TLS everywhere except loopback.
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      problems.push('ISSUER: must be https in production (http is allowed only for loopback)');
    }
  }
  const weakness =
    config.keys.encryptionSecret === '' ? 'required in production' : secretWeakness(config.keys.encryptionSecret);
  if (weakness) problems.push(`KEY_ENCRYPTION_SECRET: ${weakness}`);
  if (config.handshake.secret !== '') {
    const handshakeWeakness = secretWeakness(config.handshake.secret);
    if (handshakeWeakness) problems.push(`HANDSHAKE_SECRET: ${handshakeWeakness}`);
  }
  // RFC 7591 §3: the initial access token is the only thing between the internet and registration.
  if (config.registration.initialAccessToken !== '') {
    const weakness = secretWeakness(config.registration.initialAccessToken);
    if (weakness) problems.push(`DCR_INITIAL_ACCESS_TOKEN: ${weakness}`);
  }
  // draft-ietf-oauth-client-id-metadata-document-02 §8.6: the loopback/special-use exception MUST NOT apply in production.
  if (config.clientIdMetadataDocuments.allowPrivateAddresses) {
    problems.push(
      'CIMD_ALLOW_PRIVATE_ADDRESSES: must be false in production (it lets any client_id URL make this server fetch from private networks)',
    );
  }
  for (const [name, value] of [
    ['SIGN_IN_URL', config.handshake.signInUrl],
    ['HOST_JWKS_URL', config.handshake.hostJwksUrl],
  ] as const) {
    if (value !== '' && new URL(value).protocol === 'http:' && !isLoopbackHost(new URL(value).hostname)) {
      problems.push(`${name}: must be https in production (http is allowed only for loopback)`);
    }
  }
  return problems;
}

/** The canonical form of a value that is a URL, else the value itself. */
function canonicalOrSelf(value: string): string {
  try {
    return canonicalUrl(value);
  } catch {
    return value;
  }
}

/** Canonical form of an http(s) URL for comparison: lower-case scheme and host, no default port, no empty trailing slash, no fragment. */
export function canonicalUrl(value: string): string {
  const url = new URL(value);
  url.hash = '';
  // WHATWG URL already lower-cases scheme and host and drops default ports; only a bare "/" path is dropped.
  return url.pathname === '/' && !url.search ? url.href.slice(0, -1) : url.href;
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

  const conf = convict(schema as unknown as convict.Schema<Config>, { env: effective, args: [] });
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

  const config = conf.getProperties() as Config;
  problems.push(...crossFieldProblems(config));
  if (config.nodeEnv === 'production') problems.push(...productionProblems(config));
  if (problems.length > 0) throw new ConfigError(problems);

  config.issuer = config.issuer === '' ? `http://localhost:${config.server.port}` : canonicalUrl(config.issuer);
  return { config: deepFreeze(config), sources };
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const v of Object.values(value)) if (v && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}

/** Whether the issuer is served over https (decides Secure/`__Host-` cookies). */
export function issuerIsHttps(config: Pick<Config, 'issuer'>): boolean {
  return config.issuer.startsWith('https:');
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
