import { isLoopbackHost } from '../lib/loopback.js';
import { canonicalUrl } from '../lib/syntax.js';
import { OPENID_SCOPE, STANDARD_IDENTITY_SCOPES } from '../lib/oidc-claims.js';
import type { Policy } from './policy.js';

const STANDARD_SCOPES = new Set([OPENID_SCOPE, ...STANDARD_IDENTITY_SCOPES.keys()]);
import type { Settings } from './schema.js';

const WEAK_SECRETS = /^(change[-_ ]?me|secret|password|gatehouse|test|dev(elopment)?|example)/i;

/** Judges a secret's strength: at least 32 characters and not a placeholder or low-variety string. */
export function secretWeakness(secret: string): string | null {
  if (secret.length < 32) return 'must be at least 32 characters';
  if (WEAK_SECRETS.test(secret)) return 'looks like a placeholder; generate one with `openssl rand -base64 32`';
  if (new Set(secret).size < 12)
    return 'has too little variety to be random; generate one with `openssl rand -base64 32`';
  return null;
}

/**
 * Secret values published in this repository (docker-compose.yml's local-only fallbacks): anyone can read
 * them, so production refuses each in every secret setting. test/deploy.test.ts scans the compose file,
 * README, docs and examples and fails when a published secret is not refused.
 */
export const PUBLISHED_SECRETS: readonly string[] = [
  'local-only-7Hq2xVb9Lm4Kp8Rt3Wz6Ny1Jc5Fd0Gs',
  'local-only-Qm7vT2kR9xLp4Wc8Nz3Hb6Yd1Fs5Jg0A',
  'gatehouse-local-only',
];

/** A value that announces itself as one for local use (how the compose file marks its defaults). */
const LOCAL_ONLY = /local[-_ ]?only/i;

/** Whether a secret is one the repository publishes, or one marked local-only. */
export function isPublishedSecret(value: string): boolean {
  return value !== '' && (PUBLISHED_SECRETS.includes(value) || LOCAL_ONLY.test(value));
}

const PUBLISHED =
  'is a value published in the Gatehouse repository (a local-only default), so anyone can use it; generate one with `openssl rand -base64 32`';

/** Production's judgement of a secret: published first (a strong-looking published value is still public), then weak. */
function productionSecretProblem(secret: string): string | null {
  return isPublishedSecret(secret) ? PUBLISHED : secretWeakness(secret);
}

/** The password in a postgres:// URL, or '' when there is none or the URL does not parse. */
function databasePassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** The canonical form of a value that is a URL, else the value itself. */
function canonicalOrSelf(value: string): string {
  try {
    return canonicalUrl(value);
  } catch {
    return value;
  }
}

/** Problems no single setting shows: settings that contradict each other. One message each, naming its variable. */
export function crossFieldProblems(config: Settings, policy: Policy): string[] {
  const problems: string[] = [];
  // A CLAIMS scope releases the host's claims (OIDC Core §5.4); an access scope in SCOPES of the same name
  // would make one word mean two grants. (openid and the standard scopes are tolerated in SCOPES, as
  // deployments listed them before Gatehouse spoke OpenID Connect: they are identity scopes all the same.)
  for (const scope of policy.scopes.catalogue.keys()) {
    if (policy.scopes.identity.has(scope) && !STANDARD_SCOPES.has(scope))
      problems.push(`SCOPES: "${scope}" is an identity scope of CLAIMS; remove it from one of them`);
  }
  // A verifier's cached JWKS may be max-age old, and a replica's own key set cacheTtl old: a new key must
  // be published longer than both together before it signs.
  if (config.keys.rotationDelay <= config.keys.jwksMaxAge + config.keys.cacheTtl) {
    problems.push(
      'KEY_ROTATION_DELAY_SECONDS: must be longer than JWKS_MAX_AGE_SECONDS + KEY_CACHE_TTL_SECONDS, so every cache sees a new key before it signs',
    );
  }
  // The next key is published rotationDelay before it signs: a shorter interval would always have one pending.
  if (config.keys.rotationInterval !== 0 && config.keys.rotationInterval <= config.keys.rotationDelay) {
    problems.push('KEY_ROTATION_INTERVAL_SECONDS: must be 0 (off) or longer than KEY_ROTATION_DELAY_SECONDS');
  }
  const { requestTimeout, headersTimeout } = config.server;
  // Node refuses a headers timeout longer than the request timeout the headers are part of.
  if (requestTimeout !== 0 && headersTimeout > requestTimeout)
    problems.push('HEADERS_TIMEOUT_SECONDS: must not exceed REQUEST_TIMEOUT_SECONDS');
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
  const { configured, fallback } = policy.resources;
  // login_request JWTs are signed with the access-token keys and carry aud = HOST_ID: were HOST_ID also a
  // resource, a resource server that skipped the typ check would take one for an access token (RFC 8725 §3.11).
  if (h.hostId !== '' && (configured.includes(h.hostId) || configured.includes(canonicalOrSelf(h.hostId))))
    problems.push(
      'HOST_ID: must not be one of RESOURCES (sign-in requests and access tokens must never share an audience)',
    );
  // The fallback is DEFAULT_RESOURCE when set, else the first of RESOURCES: only the former can be outside them.
  if (fallback !== null && !configured.includes(fallback)) problems.push('DEFAULT_RESOURCE: must be one of RESOURCES');
  // A name for a resource no token can be issued for would never be shown: most likely a typo in either list.
  for (const uri of policy.resourceNames.keys())
    if (!configured.includes(uri)) problems.push(`RESOURCE_NAMES: "${uri}" is not one of RESOURCES`);
  return problems;
}

/**
 * Outside production: a published secret is allowed only while the issuer is a loopback URL (a laptop, or
 * `docker compose up` as shipped). docker-compose.yml runs in development mode so its local-only defaults
 * start; an operator who points it at a real (non-loopback) ISSUER but forgets NODE_ENV=production or a
 * secret must not get a server whose handshake secret anyone can read (a forged login_response signs in
 * as any user). Production refuses them whatever the issuer (productionProblems).
 */
export function publishedSecretProblems(config: Settings): string[] {
  let issuerIsLoopback = true;
  try {
    issuerIsLoopback = config.issuer === '' || isLoopbackHost(new URL(config.issuer).hostname);
  } catch {
    // ISSUER's own format check reports a malformed issuer.
  }
  if (issuerIsLoopback) return [];
  const problems: string[] = [];
  for (const [name, value] of [
    ['KEY_ENCRYPTION_SECRET', config.keys.encryptionSecret],
    ['HANDSHAKE_SECRET', config.handshake.secret],
    ['DCR_INITIAL_ACCESS_TOKEN', config.registration.initialAccessToken],
    ['ADMIN_TOKEN', config.admin.port !== 0 ? config.admin.token : ''],
    ['DATABASE_URL password', databasePassword(config.database.url)],
  ] as const) {
    if (isPublishedSecret(value)) problems.push(`${name}: ${PUBLISHED} (ISSUER is not a loopback URL)`);
  }
  return problems;
}

/** What production refuses besides: plain-http URLs other than loopback, and weak or missing secrets. */
export function productionProblems(config: Settings): string[] {
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
    config.keys.encryptionSecret === ''
      ? 'required in production'
      : productionSecretProblem(config.keys.encryptionSecret);
  if (weakness) problems.push(`KEY_ENCRYPTION_SECRET: ${weakness}`);
  // A known handshake secret lets anyone sign a login_response, that is, sign in as any user.
  if (config.handshake.secret !== '') {
    const handshakeWeakness = productionSecretProblem(config.handshake.secret);
    if (handshakeWeakness) problems.push(`HANDSHAKE_SECRET: ${handshakeWeakness}`);
  }
  // RFC 7591 §3: the initial access token is the only thing between the internet and registration.
  if (config.registration.initialAccessToken !== '') {
    const weakness = productionSecretProblem(config.registration.initialAccessToken);
    if (weakness) problems.push(`DCR_INITIAL_ACCESS_TOKEN: ${weakness}`);
  }
  // Its weakness is judged everywhere (crossFieldProblems); only whether it is published is left.
  if (config.admin.port !== 0 && isPublishedSecret(config.admin.token)) problems.push(`ADMIN_TOKEN: ${PUBLISHED}`);
  if (isPublishedSecret(databasePassword(config.database.url)))
    problems.push(
      'DATABASE_URL: its password is a value published in the Gatehouse repository (docker-compose.yml sets it for local use); set POSTGRES_PASSWORD to your own',
    );
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
