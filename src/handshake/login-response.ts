import { compactVerify, errors } from 'jose';
import { OAuthError } from '../oauth/errors.js';
import { type HostKeys, HostKeysUnavailable } from './host-keys.js';

/** RFC 8725 §3.11: the explicit type of a sign-in answer, so no other JWT from the host can stand in for one. */
export const LOGIN_RESPONSE_TYP = 'login-response+jwt';

/** Errors a host may answer with instead of `sub` (OpenID Connect Core §3.1.2.6 / RFC 6749 §4.1.2.1). */
export const HOST_ERRORS = ['access_denied', 'login_required'] as const;
export type HostError = (typeof HOST_ERRORS)[number];

/** Longest `sub`, `request`, `acr` and `amr` entry accepted from the host. */
const MAX_ID_LENGTH = 255;
const MAX_AMR_ENTRIES = 16;

/** Why a login_response was refused; each has its documented description (docs/handshake.md). */
export type LoginResponseFailure =
  | 'malformed'
  | 'alg_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'keys_unavailable'
  | 'bad_typ'
  | 'bad_payload'
  | 'bad_iss'
  | 'bad_aud'
  | 'bad_iat'
  | 'bad_exp'
  | 'iat_in_future'
  | 'expired'
  | 'lifetime_too_long'
  | 'bad_request'
  | 'bad_sub'
  | 'bad_auth_time'
  | 'bad_amr'
  | 'bad_acr'
  | 'bad_claims'
  | 'bad_error'
  | 'sub_and_error';

/** A refused login_response: invalid_request (400; 503 when the host's JWKS is unreachable), shown as an error page. */
export class LoginResponseError extends OAuthError {
  constructor(
    readonly reason: LoginResponseFailure,
    description: string,
    options: { cause?: unknown } = {},
  ) {
    const unavailable = reason === 'keys_unavailable';
    super(unavailable ? 'temporarily_unavailable' : 'invalid_request', description, {
      status: unavailable ? 503 : 400,
      ...options,
    });
    this.name = 'LoginResponseError';
  }
}

/** A verified sign-in: who signed in, and how. */
export interface SignedInAnswer {
  kind: 'signed-in';
  request: string;
  sub: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
  claims: Record<string, unknown>;
}

/** A verified refusal from the host. */
export interface ErrorAnswer {
  kind: 'error';
  request: string;
  error: HostError;
  description: string | null;
}

export type LoginResponse = SignedInAnswer | ErrorAnswer;

export interface VerifyLoginResponseOptions {
  /** Gatehouse's issuer: the required `aud`. */
  issuer: string;
  /** HOST_ID: the required `iss`. */
  hostId: string;
  /** CLOCK_SKEW_SECONDS. */
  clockSkew: number;
  /** LOGIN_RESPONSE_MAX_AGE_SECONDS: the longest `exp - iat`. */
  maxAge: number;
  now?: Date;
}

/** RFC 6749 §4.1.2.1: error_description is limited to these characters; anything else is not passed on. */
const DESCRIPTION_CHARS = /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,256}$/;

function fail(reason: LoginResponseFailure, description: string, cause?: unknown): never {
  throw new LoginResponseError(reason, description, cause === undefined ? {} : { cause });
}

/** RFC 8725 §3.11 / RFC 7515 §4.1.9: media types are case-insensitive and `application/` may be omitted. */
function normaliseTyp(typ: unknown): string | null {
  return typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : null;
}

async function verifySignature(token: string, keys: HostKeys): Promise<{ payload: Uint8Array; typ: unknown }> {
  try {
    // compactVerify checks `alg` against the allow-list before resolving any key, so `none` or HS256
    // against public keys is refused without touching the key material or fetching a JWKS.
    const { payload, protectedHeader } = await compactVerify(token, keys.key as Parameters<typeof compactVerify>[1], {
      algorithms: [...keys.algorithms],
    });
    return { payload, typ: protectedHeader.typ };
  } catch (err) {
    if (err instanceof HostKeysUnavailable)
      fail('keys_unavailable', 'the signing keys of the host app could not be fetched; try again', err);
    if (err instanceof errors.JOSEAlgNotAllowed)
      fail('alg_not_allowed', `login_response must be signed with ${keys.algorithms.join(', ')}`);
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
      fail('unknown_key', 'no host key matches the kid and alg of login_response');
    }
    if (err instanceof errors.JWSSignatureVerificationFailed)
      fail('bad_signature', 'the login_response signature does not verify');
    // JWSInvalid, JOSENotSupported, a key of the wrong type for `alg`…: not a JWS Gatehouse can verify.
    fail('malformed', 'login_response is not a valid signed JWT (RFC 7515 compact serialization)', err);
  }
}

function parsePayload(bytes: Uint8Array): Record<string, unknown> {
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    fail('bad_payload', 'the login_response payload is not a JSON object');
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload))
    fail('bad_payload', 'the login_response payload is not a JSON object');
  return payload as Record<string, unknown>;
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * Text Postgres can store: no NUL (text and jsonb refuse it) and no lone UTF-16 surrogate (not valid
 * UTF-8). A value the database would refuse must be refused here, as a bad answer, not become a 500.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isStorable(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && value.length <= MAX_ID_LENGTH && isStorable(value);
}

/** Whether every string (keys and values) in a JSON value is storable; bounded depth. */
function storableJson(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return isStorable(value);
  if (value === null || typeof value !== 'object') return true;
  if (depth > 16) return false;
  return Object.entries(value).every(([key, v]) => isStorable(key) && storableJson(v, depth + 1));
}

/** RFC 7519 §4.1.1-4.1.6 and the handshake's own limits, in the order docs/handshake.md lists them. */
function checkRegisteredClaims(
  claims: Record<string, unknown>,
  options: VerifyLoginResponseOptions,
  nowSeconds: number,
): { iat: number } {
  const { clockSkew: skew } = options;
  if (claims.iss !== options.hostId) fail('bad_iss', 'login_response iss is not the configured host (HOST_ID)');
  const aud = claims.aud;
  const audOk =
    aud === options.issuer ||
    (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string') && aud.includes(options.issuer));
  if (!audOk) fail('bad_aud', 'login_response aud is not the issuer of this server');
  if (!isNumericDate(claims.iat)) fail('bad_iat', 'login_response must have a numeric iat');
  if (!isNumericDate(claims.exp)) fail('bad_exp', 'login_response must have a numeric exp');
  const { iat, exp } = claims as { iat: number; exp: number };
  if (iat > nowSeconds + skew)
    fail('iat_in_future', 'login_response was issued in the future (check the clock of the host)');
  if (exp <= nowSeconds - skew) fail('expired', 'login_response has expired');
  if (exp <= iat || exp - iat > options.maxAge)
    fail('lifetime_too_long', `login_response must expire within ${options.maxAge} seconds of iat`);
  return { iat };
}

function checkSignedIn(
  claims: Record<string, unknown>,
  request: string,
  iat: number,
  options: VerifyLoginResponseOptions,
  nowSeconds: number,
): SignedInAnswer {
  if (!isId(claims.sub))
    fail('bad_sub', `login_response sub must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
  const authTime = claims.auth_time ?? iat;
  if (!isNumericDate(authTime)) fail('bad_auth_time', 'login_response auth_time must be a NumericDate (seconds)');
  if (authTime > nowSeconds + options.clockSkew) fail('bad_auth_time', 'login_response auth_time is in the future');
  const amr = claims.amr ?? [];
  if (!Array.isArray(amr) || amr.length > MAX_AMR_ENTRIES || !amr.every(isId)) {
    fail('bad_amr', `login_response amr must be an array of at most ${MAX_AMR_ENTRIES} strings`);
  }
  const acr = claims.acr ?? null;
  if (acr !== null && !isId(acr))
    fail('bad_acr', `login_response acr must be a string of at most ${MAX_ID_LENGTH} characters`);
  const extra = claims.claims ?? {};
  if (!extra || typeof extra !== 'object' || Array.isArray(extra))
    fail('bad_claims', 'login_response claims must be a JSON object');
  if (!storableJson(extra))
    fail('bad_claims', 'login_response claims must not contain NUL characters or unpaired surrogates');
  return {
    kind: 'signed-in',
    request,
    sub: claims.sub,
    authTime: new Date(Math.floor(authTime) * 1000),
    amr: amr,
    acr: acr,
    claims: extra as Record<string, unknown>,
  };
}

function checkError(claims: Record<string, unknown>, request: string): ErrorAnswer {
  const error = claims.error;
  if (typeof error !== 'string' || !(HOST_ERRORS as readonly string[]).includes(error)) {
    fail('bad_error', `login_response error must be one of ${HOST_ERRORS.join(', ')}`);
  }
  const given = claims.error_description;
  return {
    kind: 'error',
    request,
    error: error as HostError,
    // Passed on to the client only when it is a valid RFC 6749 error_description.
    description: typeof given === 'string' && DESCRIPTION_CHARS.test(given) ? given : null,
  };
}

/**
 * Verifies the host's login_response strictly: signature with an allowed algorithm and the host key,
 * explicit `typ`, then iss, aud, iat, exp and lifetime within the clock skew, then the answer itself.
 * Throws LoginResponseError naming the first failed check.
 */
export async function verifyLoginResponse(
  token: string,
  keys: HostKeys,
  options: VerifyLoginResponseOptions,
): Promise<LoginResponse> {
  const { payload, typ } = await verifySignature(token, keys);
  if (normaliseTyp(typ) !== LOGIN_RESPONSE_TYP)
    fail('bad_typ', `login_response must have the JWT header typ "${LOGIN_RESPONSE_TYP}" (RFC 8725 §3.11)`);
  const claims = parsePayload(payload);
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const { iat } = checkRegisteredClaims(claims, options, nowSeconds);
  if (!isId(claims.request))
    fail('bad_request', 'login_response must have a request claim naming the login_request jti it answers');
  const request = claims.request;
  const hasSub = claims.sub !== undefined;
  const hasError = claims.error !== undefined;
  if (hasSub === hasError)
    fail('sub_and_error', 'login_response must carry either sub or error, not both and not neither');
  return hasSub ? checkSignedIn(claims, request, iat, options, nowSeconds) : checkError(claims, request);
}
