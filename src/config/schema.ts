import { type FormatName, type FormatValue, oneOf } from './formats.js';

/** One setting: its documentation, format, default and environment variable. */
interface SettingSpec {
  doc: string;
  format: FormatName | StringConstructor | readonly string[];
  default: string | number | boolean;
  env: string;
  /** A secret: redacted when shown, and also read from `<env>_FILE`. */
  sensitive?: boolean;
}

interface SchemaTree {
  [key: string]: SettingSpec | SchemaTree;
}

/** Every setting Gatehouse has: one convict schema, read only through `loadConfig`. */
export const schema = {
  nodeEnv: {
    doc: 'Runtime mode. `production` turns on the strict checks (https issuer, strong secrets).',
    format: oneOf('production', 'development', 'test'),
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
      format: 'tcp-port',
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
    requestTimeout: {
      doc: 'Seconds a client has to send a whole request, headers and body; a slower one gets 408 and its connection is closed. Bounds slow-body clients (one byte every few seconds) that would otherwise hold a connection forever; 0 turns the limit off.',
      format: 'non-negative-int',
      default: 30,
      env: 'REQUEST_TIMEOUT_SECONDS',
    },
    headersTimeout: {
      doc: "Seconds a client has to send a request's headers (slow-header clients get 408); at most REQUEST_TIMEOUT_SECONDS when that is on.",
      format: 'positive-int',
      default: 10,
      env: 'HEADERS_TIMEOUT_SECONDS',
    },
    keepAliveTimeout: {
      doc: "Seconds an idle keep-alive connection stays open between requests. Behind a proxy or load balancer, set it above the proxy's own idle timeout so the proxy never reuses a connection this server is closing.",
      format: 'positive-int',
      default: 72,
      env: 'KEEP_ALIVE_TIMEOUT_SECONDS',
    },
    connectionTimeout: {
      doc: 'Seconds a connection may stay silent in both directions (no byte read or written, a request in progress or not) before it is closed; 0 turns the limit off. Keep it above REQUEST_TIMEOUT_SECONDS and the longest answer the database may make a request wait for.',
      format: 'non-negative-int',
      default: 120,
      env: 'CONNECTION_TIMEOUT_SECONDS',
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
    connectTimeoutMs: {
      doc: 'Milliseconds a request waits to open a Postgres connection or to get one from a full pool before it fails with 503 `temporarily_unavailable`. `0` waits forever.',
      format: 'non-negative-int',
      default: 3000,
      env: 'DATABASE_CONNECT_TIMEOUT_MS',
    },
    statementTimeoutMs: {
      doc: 'Postgres `statement_timeout` in milliseconds: the server cancels a statement running longer, and the request fails with 503 `temporarily_unavailable`. `0` turns it off. Migrations run without it.',
      format: 'non-negative-int',
      default: 5000,
      env: 'DATABASE_STATEMENT_TIMEOUT_MS',
    },
    queryTimeoutMs: {
      doc: 'Milliseconds the client waits for any answer to a query before giving up on it (503 `temporarily_unavailable`); this catches a frozen or unreachable server, which `statement_timeout` cannot. Keep it above `DATABASE_STATEMENT_TIMEOUT_MS`. `0` turns it off.',
      format: 'non-negative-int',
      default: 10000,
      env: 'DATABASE_QUERY_TIMEOUT_MS',
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
    startupWaitSeconds: {
      doc: '`serve` only: seconds to keep retrying, with exponential backoff, a Postgres that refuses or drops connections at start (it may still be starting) before giving up with exit code 1. Each attempt logs one line naming host:port/database, never the password. 0 tries once. The CLI never waits.',
      format: 'non-negative-int',
      default: 60,
      env: 'DATABASE_STARTUP_WAIT_SECONDS',
    },
  },
  log: {
    level: {
      doc: 'Log level.',
      format: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
      default: 'info',
      env: 'LOG_LEVEL',
    },
    pretty: {
      doc: 'Human-readable logs instead of JSON lines (for local development).',
      format: 'strict-boolean',
      default: false,
      env: 'LOG_PRETTY',
    },
    requests: {
      doc: 'One log line per request (method, path with secrets redacted, status, time); health probes and metrics scrapes at debug. `false` turns request lines off (errors are still logged).',
      format: 'strict-boolean',
      default: true,
      env: 'LOG_REQUESTS',
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
      format: oneOf('ES256', 'RS256', 'PS256', 'EdDSA'),
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
    rotationInterval: {
      doc: 'Automatic rotation: a key signs for this many seconds (default 90 days), then the next key, published KEY_ROTATION_DELAY_SECONDS ahead, takes over and the old one retires once its tokens have expired. 0 turns automatic rotation off (`gatehouse keys rotate` still works). Not used with SIGNING_KEY_FILES.',
      format: 'non-negative-int',
      default: 7_776_000,
      env: 'KEY_ROTATION_INTERVAL_SECONDS',
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
  dpop: {
    required: {
      doc: 'Require a DPoP proof (RFC 9449) on every token request, whatever the client: every access token is then sender-constrained. Off: a proof is optional, except for clients registered with `dpop_bound_access_tokens`.',
      format: 'strict-boolean',
      default: false,
      env: 'DPOP_REQUIRED',
    },
    proofMaxAge: {
      doc: 'Seconds a DPoP proof is accepted after its `iat` (plus CLOCK_SKEW_SECONDS either way); each accepted proof is remembered that long so a replay is refused by every replica.',
      format: 'positive-int',
      default: 60,
      env: 'DPOP_PROOF_MAX_AGE_SECONDS',
    },
    nonceRequired: {
      doc: "Require a server-provided nonce in every DPoP proof (RFC 9449 §8): a proof without one is answered `use_dpop_nonce` with a `DPoP-Nonce` header, costing a client one extra request per nonce (about every 5 minutes). Nonces are stateless (an HMAC of the time under a key derived from KEY_ENCRYPTION_SECRET), so every replica accepts another's.",
      format: 'strict-boolean',
      default: false,
      env: 'DPOP_NONCE_REQUIRED',
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
    claims: {
      doc: 'Identity scopes of your own beyond the standard OpenID Connect ones (`profile`, `email`, `address`, `phone`): a JSON object of scope name to the host claims it releases and the words the consent page uses for them (`{"employment":{"description":"your employee number and department","claims":["employee_id","department"]}}`), or space-separated `scope:claim1,claim2` entries. The claims come from the `claims` of the host\'s login_response (docs/openid-connect.md).',
      format: 'claims-catalogue',
      default: '',
      env: 'CLAIMS',
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
      format: 'resource',
      default: '',
      env: 'DEFAULT_RESOURCE',
    },
    names: {
      doc: 'Display names of resources for the consent and connected-apps pages, which otherwise show the bare URI: a JSON object of resource URI (one of RESOURCES) to its name (`{"https://api.example.com":"Example Notes API"}`, at most 100 characters each). The pages show the name with the URI beneath it.',
      format: 'resource-names',
      default: '',
      env: 'RESOURCE_NAMES',
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
      doc: 'Seconds after a refresh-token rotation during which the same client presenting the token it just rotated, before it has used the new one, is a retry of a lost answer, not reuse: it gets the same new refresh token again with a fresh access token, and the chain lives on. Reuse after the window, of an older token, or by another client still revokes the chain. 0 turns the window off. See docs/refresh-tokens.md.',
      format: 'non-negative-int',
      default: 30,
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
  clientAuthThrottle: {
    window: {
      doc: 'Seconds over which failed client authentications (at /token, /introspect, /revoke) are counted; once a limit below is reached, that endpoint answers 429 `temporarily_unavailable` with `Retry-After` until the window that opened with the first failure ends, without checking the secret (RFC 6749 §2.3.1). Counted per process, in memory: across N replicas without sticky routing the limits are effectively N times higher.',
      format: 'positive-int',
      default: 300,
      env: 'CLIENT_AUTH_FAILURE_WINDOW_SECONDS',
    },
    maxPerClientAddress: {
      doc: 'Failed authentications of one client_id from one address (an IPv6 address counts by its /64; behind `TRUST_PROXY`, the forwarded client address) within the window before that client is refused from that address. 0 turns the whole throttle off.',
      format: 'non-negative-int',
      default: 10,
      env: 'CLIENT_AUTH_MAX_FAILURES',
    },
    maxPerAddress: {
      doc: 'Failed authentications from one address, whatever client_id, within the window before the address is refused, except for clients that authenticated successfully from it in the last 24 hours. 0 turns this limit off.',
      format: 'non-negative-int',
      default: 50,
      env: 'CLIENT_AUTH_MAX_FAILURES_PER_ADDRESS',
    },
    maxPerClient: {
      doc: 'Failed authentications of one client_id from all addresses within the window before it is refused from every address that has not authenticated it successfully in the last 24 hours (a distributed guess); the addresses the client really uses keep working. 0 turns this limit off.',
      format: 'non-negative-int',
      default: 500,
      env: 'CLIENT_AUTH_MAX_FAILURES_PER_CLIENT',
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
      doc: 'Longest time a metadata document (or client `jwks_uri`) fetch may take (connect, TLS, response and body), in milliseconds.',
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
      doc: 'Development only: allow metadata document (and client `jwks_uri`) fetches to private, loopback, link-local and other special-use addresses. Refused in production (SSRF).',
      format: 'strict-boolean',
      default: false,
      env: 'CIMD_ALLOW_PRIVATE_ADDRESSES',
    },
    caFile: {
      doc: 'Path of a PEM file of extra CA certificates trusted (besides the system roots) when fetching metadata documents and client `jwks_uri` key sets, for clients served under an internal CA.',
      format: String,
      default: '',
      env: 'CIMD_CA_FILE',
    },
  },
  logout: {
    allowPrivateAddresses: {
      doc: 'Deliver back-channel logout tokens to private, loopback, link-local and other special-use addresses too (an RP on an internal network). Off: such a backchannel_logout_uri is never POSTed to (a self-registered client could otherwise aim Gatehouse at internal hosts).',
      format: 'strict-boolean',
      default: false,
      env: 'BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES',
    },
    timeout: {
      doc: "Longest time one back-channel logout POST may take (connect, TLS and the RP's answer), in milliseconds.",
      format: 'positive-int',
      default: 5000,
      env: 'BACKCHANNEL_LOGOUT_TIMEOUT_MS',
    },
    maxAttempts: {
      doc: 'Attempts at delivering one logout token before it is given up (and logged).',
      format: 'positive-int',
      default: 8,
      env: 'BACKCHANNEL_LOGOUT_MAX_ATTEMPTS',
    },
    retryDelay: {
      doc: 'Seconds before the first retry of a failed back-channel logout; each further retry waits twice as long (at most an hour).',
      format: 'positive-int',
      default: 30,
      env: 'BACKCHANNEL_LOGOUT_RETRY_SECONDS',
    },
    pollInterval: {
      doc: 'Milliseconds between two looks at the logout outbox for due deliveries (one replica delivers each; a sign-out on this replica is delivered at once).',
      format: 'positive-int',
      default: 2000,
      env: 'BACKCHANNEL_LOGOUT_POLL_MS',
    },
    tokenTtl: {
      doc: 'Lifetime of a logout token (exp - iat), in seconds; Back-Channel Logout recommends at most two minutes.',
      format: 'positive-int',
      default: 120,
      env: 'LOGOUT_TOKEN_TTL_SECONDS',
    },
  },
  par: {
    requestUriTtl: {
      doc: 'Seconds a `request_uri` from the pushed authorization request endpoint (POST /par, RFC 9126) stays usable at /authorize; it is used once. Short: the client redirects the browser right after pushing.',
      format: 'positive-int',
      default: 60,
      env: 'PAR_REQUEST_URI_TTL_SECONDS',
    },
    required: {
      doc: 'Require pushed authorization requests from every client (RFC 9126 §6 `require_pushed_authorization_requests`): /authorize then refuses parameters that were not pushed. A client can also require it for itself (client metadata of the same name).',
      format: 'strict-boolean',
      default: false,
      env: 'PAR_REQUIRED',
    },
  },
  clientAuthentication: {
    assertionMaxLifetime: {
      doc: 'Longest lifetime of a private_key_jwt client assertion (RFC 7523), in seconds: its `exp` may be at most this far after its `iat` (or after now). Each assertion is accepted once; its `jti` is remembered until it expires.',
      format: 'positive-int',
      default: 300,
      env: 'CLIENT_ASSERTION_MAX_LIFETIME_SECONDS',
    },
    jwksCacheTtl: {
      doc: "Seconds a client's `jwks_uri` key set is kept in memory before it is fetched again; an assertion signed by a key the cached set lacks fetches it once more (at most every 10 s per URL). Fetched with the CIMD_* safeguards (https, no special-use addresses, no redirects, CIMD_FETCH_TIMEOUT_MS, CIMD_CA_FILE).",
      format: 'positive-int',
      default: 300,
      env: 'CLIENT_JWKS_CACHE_SECONDS',
    },
  },
  admin: {
    port: {
      doc: 'Port of the admin listener (admin API and `/metrics`), kept off the public internet. 0 turns the admin listener off.',
      format: 'tcp-port',
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
  branding: {
    name: {
      doc: "The operator's name, shown at the top of every page (with the logo) and in page titles. Empty: pages show the issuer's host only. At most 100 characters.",
      format: 'brand-name',
      default: '',
      env: 'BRAND_NAME',
    },
    logoUrl: {
      doc: 'Logo shown at the top of every page: an `https://` URL, or a `data:image/(png|jpeg|gif|webp|svg+xml);base64,…` URI of at most 32 KB (no request to another host). Shown about 32 px high.',
      format: 'brand-logo',
      default: '',
      env: 'BRAND_LOGO_URL',
    },
    primaryColor: {
      doc: 'The main colour of the pages (primary button, links and focus ring in the light scheme; the primary button in the dark one) as a hex colour, `#1a7f5a` or `#1a7`. Served in the page stylesheet, so the pages keep their strict CSP.',
      format: 'hex-color',
      default: '',
      env: 'BRAND_PRIMARY_COLOR',
    },
    supportUrl: {
      doc: 'An `https://` page where users get help, linked from the footer of every page.',
      format: 'optional-https-url',
      default: '',
      env: 'BRAND_SUPPORT_URL',
    },
    supportEmail: {
      doc: 'An email address users can write to for help, linked (`mailto:`) from the footer of every page.',
      format: 'optional-email',
      default: '',
      env: 'BRAND_SUPPORT_EMAIL',
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
    dutyPercent: {
      doc: "Percent of a sweep's time its delete statements may keep Postgres busy: after each statement the janitor pauses until the statements' share of the elapsed time is back to this, so a large backlog is worked off beside token traffic rather than ahead of it (at 25, a statement of 40 ms is followed by 120 ms of rest). 100: no pauses, for a catch-up run of `gatehouse janitor` while nothing else needs the database.",
      format: 'percent',
      default: 25,
      env: 'JANITOR_DUTY_PERCENT',
    },
  },
  audit: {
    retentionDays: {
      doc: 'Days an audit event (`audit_events`, docs/audit.md) is kept; the janitor deletes older ones in batches. 0 keeps them forever.',
      format: 'non-negative-int',
      default: 90,
      env: 'AUDIT_RETENTION_DAYS',
    },
    tokenEvents: {
      doc: 'Record a `token.issued` audit event for every token response (the high-volume type; every other event type is always recorded). `false` keeps the token endpoint to its request log line alone.',
      format: 'strict-boolean',
      default: true,
      env: 'AUDIT_TOKEN_EVENTS',
    },
  },
} as const satisfies SchemaTree;

/** The values of a schema (sub)tree, each setting typed by its format. */
type SettingsOf<S> = {
  -readonly [K in keyof S]: S[K] extends { env: string; format: infer F } ? FormatValue<F> : SettingsOf<S[K]>;
};

/** Every setting's validated value, in the schema's shape; derived from the schema, so the two cannot drift. */
export type Settings = SettingsOf<typeof schema>;

/** An algorithm generated signing keys may use (SIGNING_ALG). */
export type SigningAlg = Settings['keys']['signingAlg'];

/** One setting of the schema, with its dotted path and environment variable. */
export interface SchemaLeaf {
  path: string;
  env: string;
  sensitive: boolean;
  doc: string;
  format: unknown;
  default: unknown;
}

/** The schema's settings in order, each with its path and environment variable. */
export function schemaLeaves(node: SchemaTree = schema, prefix = ''): SchemaLeaf[] {
  const leaves: SchemaLeaf[] = [];
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value.env === 'string') {
      const leaf = value as SettingSpec;
      leaves.push({
        path,
        env: leaf.env,
        sensitive: leaf.sensitive === true,
        doc: leaf.doc,
        format: leaf.format,
        default: leaf.default,
      });
    } else {
      leaves.push(...schemaLeaves(value as SchemaTree, path));
    }
  }
  return leaves;
}
