import { createHash } from 'node:crypto';
import {
  EmbeddedJWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
} from 'jose';

/**
 * What a resource server (an API, an MCP server) needs to accept Gatehouse's access tokens, with no
 * framework and no Gatehouse code: offline verification of the RFC 9068 JWT against the issuer's JWKS
 * (fetched once, cached, refetched on an unknown kid), Bearer (RFC 6750) and DPoP (RFC 9449) presentation,
 * the 401/403 answers with their WWW-Authenticate challenges, and the RFC 9728 protected resource
 * metadata. `./fastify.ts` wires it into a Fastify app in a few lines; docs/resource-servers.md shows both.
 */

/** The algorithms Gatehouse signs access tokens with; never `none`, never HS*. */
export const TOKEN_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'];
/** RFC 9449 §7.1 `algs`: the asymmetric algorithms accepted for DPoP proofs. */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];
/** RFC 9728 §3: where a resource's metadata lives, before the resource's path. */
export const PRM_PATH = '/.well-known/oauth-protected-resource';

export interface ProtectedResourceOptions {
  /** Gatehouse's ISSUER, exactly: the required `iss`. */
  issuer: string;
  /** This API's resource identifier: the `aud` tokens must carry, one of Gatehouse's RESOURCES. */
  resource: string;
  /** Where Gatehouse publishes its keys; `<issuer>/.well-known/jwks.json` by default. */
  jwksUri?: string;
  /** The key source, instead of fetching `jwksUri` (a local JWK Set, a test's). */
  keys?: JWTVerifyGetKey;
  /** Access token signature algorithms accepted. */
  algorithms?: string[];
  /** DPoP proof algorithms accepted (RFC 9449 §7.1 `algs`). */
  dpopAlgorithms?: string[];
  /** `allowed` (default): Bearer or DPoP; `required`: DPoP only (RFC 9449 §7.2). */
  dpop?: 'allowed' | 'required';
  /** Seconds of tolerance on `exp`, and on a proof's `iat` either way; 30 by default. */
  clockToleranceSeconds?: number;
  /** Seconds a DPoP proof is accepted after its `iat`; 60 by default. */
  proofMaxAgeSeconds?: number;
  /** Scopes listed in the metadata (RFC 9728 §2 `scopes_supported`). */
  scopesSupported?: string[];
  /** The time, in milliseconds; Date.now by default. */
  now?: () => number;
}

/** The parts of an HTTP request verification needs. */
export interface ResourceRequest {
  method: string;
  /** The URL the client called, as it sees it (the DPoP `htu`); its query and fragment are ignored. */
  url: string;
  /** Lower-case header names, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
}

/** What a valid token tells the API. */
export interface AccessToken {
  sub: string;
  client_id: string;
  scope: string;
  scopes: string[];
  aud: string | string[];
  /** How it was presented; `DPoP` means the caller proved the key the token is bound to. */
  scheme: 'Bearer' | 'DPoP';
  /** RFC 9449 §6.1: the bound key's thumbprint, when the token is DPoP-bound. */
  jkt?: string;
  payload: JWTPayload;
}

/** A refusal as an HTTP answer: status, headers (WWW-Authenticate and no-store), JSON body. */
export interface Refusal {
  status: 401 | 403 | 503;
  headers: Record<string, string | string[]>;
  body: { error: string; error_description: string };
}

export type AuthenticationResult = { ok: true; token: AccessToken } | { ok: false; refusal: Refusal };

type Scheme = 'Bearer' | 'DPoP';
type ErrorCode = 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'invalid_request';

/** Why a request is refused, and under which scheme's challenge (RFC 6750 §3.1, RFC 9449 §7.1). */
class Refused extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    readonly error: ErrorCode | 'temporarily_unavailable' | null,
    readonly description: string,
    readonly scheme: Scheme | null,
  ) {
    super(description);
  }
}

/** The issuer's keys could not be had (Gatehouse or its load balancer down): not the token's fault. */
class KeysUnavailable extends Error {}

/**
 * Wraps a remote key set so a failure to FETCH the keys is told apart from a token naming a key the
 * issuer does not have: jose reports a non-200 answer and bad JSON as the same JOSEError class every
 * token error extends, and an outage must not make every client throw its tokens away.
 */
export function markFetchFailures(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (protectedHeader, token) => {
    try {
      return await keys(protectedHeader, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      throw new KeysUnavailable('the signing keys could not be fetched', { cause: err });
    }
  };
}

/** RFC 9728 §3.1: the metadata URL of a resource inserts the well-known path before the resource's path. */
export function metadataUrlFor(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}${PRM_PATH}${path}`;
}

/**
 * One WWW-Authenticate challenge whose auth-param values are quoted-strings (RFC 9110 §5.6.4): `"` and `\`
 * escaped; a control character (or anything past Latin-1) cannot be quoted at all, so it is refused.
 */
export function challenge(params: Array<[string, string]>, scheme: Scheme = 'Bearer'): string {
  const quoted = (value: string) => {
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value))
      throw new TypeError('a WWW-Authenticate parameter cannot carry control characters or non-Latin-1 text');
    return `"${value.replace(/["\\]/g, '\\$&')}"`;
  };
  if (params.length === 0) return scheme;
  return `${scheme} ${params.map(([name, value]) => `${name}=${quoted(value)}`).join(', ')}`;
}

/** RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E; anything else becomes `?`. */
function headerDescription(description: string): string {
  return description.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

/** `<scheme> <token68>` of the Authorization header (the scheme case-insensitive, RFC 9110 §11.1), or null. */
function credentials(header: string | string[] | undefined): { scheme: Scheme; token: string } | null {
  if (typeof header !== 'string') return null;
  const match = /^(Bearer|DPoP) +(\S*) *$/i.exec(header);
  if (!match) return null; // another scheme: as if no token was sent
  return { scheme: match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] ?? '' };
}

/** RFC 9449 §4.3 step 9: `htu` and the request URL compared after RFC 3986 normalisation, without query or fragment. */
function normalisedUrl(value: string): string | null {
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
    return `${url.protocol}//${url.host}${url.pathname.replace(/%[0-9a-f]{2}/gi, (e) => e.toUpperCase())}`;
  } catch {
    return null;
  }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The jtis of accepted proofs, each until its iat leaves the window (RFC 9449 §11.1), in this process's
 * memory: enough for one instance; several instances behind a balancer each keep their own (a shared
 * store, or server nonces, closes that gap). Bounded: when full, the oldest entries go first.
 */
class ReplayCache {
  readonly #seen = new Map<string, number>();
  constructor(readonly limit = 100_000) {}

  /** False when `key` was seen and has not expired; otherwise remembers it until `expiresAt`. */
  accept(key: string, expiresAt: number, now: number): boolean {
    const known = this.#seen.get(key);
    if (known !== undefined && known > now) return false;
    if (this.#seen.size >= this.limit) {
      for (const [k, exp] of this.#seen) {
        if (exp <= now || this.#seen.size >= this.limit) this.#seen.delete(k);
        else break;
      }
    }
    this.#seen.set(key, expiresAt);
    return true;
  }
}

/**
 * A resource protected by Gatehouse tokens: `authenticate` checks a request and either returns the
 * token's claims or the answer to send; `metadata` is the RFC 9728 document.
 */
export class ProtectedResource {
  readonly resource: string;
  readonly metadataUrl: string;
  readonly #options: Required<Pick<ProtectedResourceOptions, 'issuer' | 'algorithms' | 'dpopAlgorithms' | 'dpop'>> & {
    tolerance: number;
    maxAge: number;
    scopes: string[];
  };
  readonly #keys: JWTVerifyGetKey;
  readonly #now: () => number;
  readonly #replays = new ReplayCache();

  constructor(options: ProtectedResourceOptions) {
    this.resource = options.resource;
    this.metadataUrl = metadataUrlFor(options.resource);
    this.#options = {
      issuer: options.issuer,
      algorithms: options.algorithms ?? TOKEN_ALGORITHMS,
      dpopAlgorithms: options.dpopAlgorithms ?? DPOP_ALGORITHMS,
      dpop: options.dpop ?? 'allowed',
      tolerance: options.clockToleranceSeconds ?? 30,
      maxAge: options.proofMaxAgeSeconds ?? 60,
      scopes: options.scopesSupported ?? [],
    };
    this.#now = options.now ?? Date.now;
    // Cached up to 10 minutes, refetched on an unknown kid at most every 30 s: a rotation is picked up
    // without a restart, and a flood of bogus kids cannot hammer Gatehouse.
    this.#keys = markFetchFailures(
      options.keys ??
        createRemoteJWKSet(new URL(options.jwksUri ?? `${options.issuer.replace(/\/$/, '')}/.well-known/jwks.json`), {
          timeoutDuration: 5000,
          cooldownDuration: 30_000,
          cacheMaxAge: 600_000,
        }),
    );
  }

  /** RFC 9728 §2: what a client needs to find the authorization server and how to present tokens. */
  metadata(): Record<string, unknown> {
    return {
      resource: this.resource,
      authorization_servers: [this.#options.issuer],
      scopes_supported: this.#options.scopes,
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: this.#options.dpopAlgorithms,
      ...(this.#options.dpop === 'required' ? { dpop_bound_access_tokens_required: true } : {}),
    };
  }

  /**
   * Checks the request's access token (and DPoP proof) and that it carries every scope in `required`.
   * A token Gatehouse bound to a key is accepted only under the DPoP scheme with a proof by that key
   * (RFC 9449 §7.2): a leaked bound token is useless without the key.
   */
  async authenticate(request: ResourceRequest, required: readonly string[] = []): Promise<AuthenticationResult> {
    try {
      const token = await this.#verify(request);
      const missing = required.filter((scope) => !token.scopes.includes(scope));
      // RFC 6750 §3.1: a valid token without the scope is 403 insufficient_scope, not 401.
      if (missing.length > 0)
        throw new Refused(
          403,
          'insufficient_scope',
          `the access token lacks the ${missing.join(' ')} scope`,
          token.scheme,
        );
      return { ok: true, token };
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      return { ok: false, refusal: this.#refusal(err, required) };
    }
  }

  async #verify(request: ResourceRequest): Promise<AccessToken> {
    const presented = credentials(request.headers.authorization);
    if (presented === null) throw new Refused(401, null, 'an access token is required', null);
    const { scheme, token } = presented;
    if (scheme === 'Bearer' && this.#options.dpop === 'required')
      throw new Refused(401, 'invalid_token', 'this resource accepts only DPoP-bound access tokens', 'DPoP');
    if (token === '') throw new Refused(401, 'invalid_token', 'the access token is empty', scheme);
    const payload = await this.#verifyJwt(token, scheme);
    const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (payload.cnf !== undefined && typeof jkt !== 'string')
      throw new Refused(401, 'invalid_token', 'the access token has an invalid cnf claim', scheme);
    if (scheme === 'Bearer' && jkt !== undefined)
      // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
      throw new Refused(
        401,
        'invalid_token',
        'the access token is DPoP-bound; present it with the DPoP scheme and a proof',
        'DPoP',
      );
    if (scheme === 'DPoP') {
      if (jkt === undefined)
        throw new Refused(
          401,
          'invalid_token',
          'the access token is not DPoP-bound; present it as a Bearer token',
          'DPoP',
        );
      await this.#checkProof(request, token, jkt as string);
    }
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    return {
      sub: String(payload.sub),
      client_id: String(payload.client_id),
      scope,
      scopes: scope.split(' ').filter(Boolean),
      aud: payload.aud as string | string[],
      scheme,
      ...(typeof jkt === 'string' ? { jkt } : {}),
      payload,
    };
  }

  async #verifyJwt(token: string, scheme: Scheme): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, this.#keys, {
        issuer: this.#options.issuer,
        audience: this.resource, // RFC 8707: a token for another API must not work here
        typ: 'at+jwt', // RFC 9068 §4: an ID token or any other JWT from the same keys is not an access token
        algorithms: this.#options.algorithms,
        clockTolerance: this.#options.tolerance,
        currentDate: new Date(this.#now()),
        requiredClaims: ['sub', 'exp', 'client_id'],
      });
      return payload;
    } catch (err) {
      throw describeTokenError(err, scheme);
    }
  }

  /** RFC 9449 §4.3 at a resource: the proof, its `ath` (this token) and its key (the token's `cnf.jkt`). */
  async #checkProof(request: ResourceRequest, token: string, jkt: string): Promise<void> {
    const invalid = (description: string) => new Refused(401, 'invalid_dpop_proof', description, 'DPoP');
    const header = request.headers.dpop;
    if (header === undefined) throw invalid('a DPoP proof is required with a DPoP-bound access token');
    // §4.3 step 1: exactly one DPoP header (Node joins repeated ones with a comma, which no JWT has).
    if (Array.isArray(header) || header.includes(',')) throw invalid('exactly one DPoP header is allowed');
    let protectedHeader: ReturnType<typeof decodeProtectedHeader>;
    try {
      protectedHeader = decodeProtectedHeader(header);
    } catch {
      throw invalid('the DPoP proof is not a JWT');
    }
    if (protectedHeader.typ !== 'dpop+jwt') throw invalid('the DPoP proof typ must be dpop+jwt');
    if (typeof protectedHeader.alg !== 'string' || !this.#options.dpopAlgorithms.includes(protectedHeader.alg))
      throw invalid(`the DPoP proof alg must be one of ${this.#options.dpopAlgorithms.join(', ')}`);
    const jwk = protectedHeader.jwk as Record<string, unknown> | undefined;
    if (jwk === null || typeof jwk !== 'object') throw invalid('the DPoP proof has no jwk header');
    if (PRIVATE_MEMBERS.some((member) => member in jwk)) throw invalid('the DPoP proof jwk must be a public key');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(header, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: this.#options.dpopAlgorithms,
        currentDate: new Date(this.#now()),
      }));
    } catch {
      throw invalid('the DPoP proof signature does not verify with its jwk');
    }
    const { jti, htm, htu, iat, ath } = payload as Record<string, unknown>;
    if (typeof jti !== 'string' || jti === '' || jti.length > 256)
      throw invalid('the DPoP proof must have a jti claim');
    if (htm !== request.method) throw invalid(`the DPoP proof htm must be ${request.method}`);
    const expected = normalisedUrl(request.url);
    if (typeof htu !== 'string' || expected === null || normalisedUrl(htu) !== expected)
      throw invalid('the DPoP proof htu must be the URL of this request');
    const now = Math.floor(this.#now() / 1000);
    const { maxAge, tolerance } = this.#options;
    if (typeof iat !== 'number' || iat > now + tolerance || iat < now - maxAge - tolerance)
      throw invalid('the DPoP proof iat is outside the accepted window; create a new proof');
    // §4.3 step 12: the proof is for this token (ath) and by the key it is bound to (cnf.jkt).
    if (ath !== createHash('sha256').update(token, 'ascii').digest('base64url'))
      throw invalid('the DPoP proof ath does not match the access token');
    if ((await calculateJwkThumbprint(jwk, 'sha256')) !== jkt)
      throw new Refused(401, 'invalid_token', 'the DPoP proof key is not the key the access token is bound to', 'DPoP');
    // §11.1: each proof once.
    if (!this.#replays.accept(`${jkt}\u0000${jti}`, (iat + maxAge + 2 * tolerance) * 1000, this.#now()))
      throw invalid('the DPoP proof was already used; create a new proof for each request');
  }

  /** The answer for a refusal: the challenge of the scheme the client used, or of every scheme accepted. */
  #refusal(err: Refused, required: readonly string[]): Refusal {
    if (err.status === 503) {
      return {
        status: 503,
        headers: { 'retry-after': '5', 'cache-control': 'no-store' },
        body: { error: 'temporarily_unavailable', error_description: err.description },
      };
    }
    const challengeFor = (scheme: Scheme, withError: boolean): string => {
      const params: Array<[string, string]> = [];
      if (withError && err.error) params.push(['error', err.error]);
      if (withError && err.status === 401 && err.error)
        params.push(['error_description', headerDescription(err.description)]);
      if (withError && err.status === 403 && required.length > 0) params.push(['scope', required.join(' ')]);
      // RFC 9449 §7.1: the algorithms a proof may use.
      if (scheme === 'DPoP') params.push(['algs', this.#options.dpopAlgorithms.join(' ')]);
      // RFC 9728 §5.1: where the client finds which authorization server to use.
      params.push(['resource_metadata', this.metadataUrl]);
      return challenge(params, scheme);
    };
    let challenges: string[];
    if (err.scheme !== null) challenges = [challengeFor(err.scheme, true)];
    else {
      // No credentials: every accepted scheme is offered (RFC 9110 §11.6.1, RFC 9449 §7.2).
      const schemes: Scheme[] = this.#options.dpop === 'required' ? ['DPoP'] : ['Bearer', 'DPoP'];
      challenges = schemes.map((scheme) => challengeFor(scheme, false));
    }
    return {
      status: err.status,
      headers: { 'www-authenticate': challenges, 'cache-control': 'no-store' },
      body: err.error
        ? { error: err.error, error_description: err.description }
        : { error: 'unauthorized', error_description: err.description },
    };
  }
}

/** jose's errors as descriptions a client developer can act on (never internals). */
function describeTokenError(err: unknown, scheme: Scheme): Refused {
  // RFC 6750 §3.1 invalid_token tells the client to discard its token: only when the token is at fault.
  if (err instanceof KeysUnavailable || !(err instanceof errors.JOSEError)) {
    return new Refused(
      503,
      'temporarily_unavailable',
      'the signing keys of the authorization server could not be fetched; try again',
      null,
    );
  }
  const invalid = (description: string) => new Refused(401, 'invalid_token', description, scheme);
  if (err instanceof errors.JWTExpired) return invalid('the access token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return invalid('the access token is not for this resource (aud)');
    if (err.claim === 'iss') return invalid('the access token is not from the expected issuer (iss)');
    if (err.claim === 'typ') return invalid('the token is not an access token (typ must be at+jwt, RFC 9068)');
    return invalid(`the access token has an invalid ${err.claim} claim`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return invalid('the access token is signed with an algorithm this resource does not accept');
  if (err instanceof errors.JWKSNoMatchingKey) return invalid('no signing key of the issuer matches the access token');
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return invalid('the access token names no single signing key of the issuer (kid)');
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return invalid('the access token signature does not verify');
  return invalid('the access token is malformed');
}
