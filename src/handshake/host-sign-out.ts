import { compactVerify, errors } from 'jose';
import { OAuthError } from '../oauth/errors.js';
import { type HostKeys, HostKeysUnavailable } from './host-keys.js';

/** RFC 8725 §3.11: the explicit type of the host's sign-out message, so no other host JWT can stand in for one. */
export const HOST_SIGN_OUT_TYP = 'sign-out+jwt';

/** Longest `sub`, `sid` and `jti` accepted. */
const MAX_ID_LENGTH = 255;

/** A refused sign-out message: 400 invalid_request (503 temporarily_unavailable when the host's JWKS is unreachable). */
export class HostSignOutError extends OAuthError {
  constructor(description: string, options: { cause?: unknown; unavailable?: boolean } = {}) {
    super(options.unavailable ? 'temporarily_unavailable' : 'invalid_request', description, {
      status: options.unavailable ? 503 : 400,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.name = 'HostSignOutError';
  }
}

/** A verified sign-out message: whose sessions end (`sid`: one; else every session of `sub`). */
export interface HostSignOut {
  jti: string;
  /** When the message expires: its jti must be remembered until then (plus the skew). */
  exp: number;
  sub: string | null;
  sid: string | null;
}

export interface VerifyHostSignOutOptions {
  /** Gatehouse's issuer: the required `aud`. */
  issuer: string;
  /** HOST_ID: the required `iss`. */
  hostId: string;
  clockSkew: number;
  /** LOGIN_RESPONSE_MAX_AGE_SECONDS: the longest `exp - iat`. */
  maxAge: number;
  now: Date;
}

function fail(description: string, cause?: unknown): never {
  throw new HostSignOutError(description, cause === undefined ? {} : { cause });
}

function isId(value: unknown): value is string {
  // No NUL or lone surrogate: the value is stored or compared with stored text.
  return (
    typeof value === 'string' &&
    value !== '' &&
    value.length <= MAX_ID_LENGTH &&
    // eslint-disable-next-line no-control-regex
    !/[\u0000]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)
  );
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * Verifies the host's signed sign-out message (docs/handshake.md, "Signing out"), with the same keys and
 * algorithm allow-list as login_response: signature, `typ` sign-out+jwt, iss = HOST_ID, aud = the issuer,
 * iat/exp within the skew and at most `maxAge` apart, a `jti` (single use is the caller's to enforce), and
 * `sub` and/or `sid`. Throws HostSignOutError naming the first failed check.
 */
export async function verifyHostSignOut(
  token: string,
  keys: HostKeys,
  options: VerifyHostSignOutOptions,
): Promise<HostSignOut> {
  let bytes: Uint8Array;
  let typ: unknown;
  try {
    const verified = await compactVerify(token, keys.key as Parameters<typeof compactVerify>[1], {
      algorithms: [...keys.algorithms],
    });
    bytes = verified.payload;
    typ = verified.protectedHeader.typ;
  } catch (err) {
    if (err instanceof HostKeysUnavailable)
      throw new HostSignOutError('the signing keys of the host app could not be fetched; try again', {
        cause: err,
        unavailable: true,
      });
    if (err instanceof errors.JOSEAlgNotAllowed) fail(`sign_out must be signed with ${keys.algorithms.join(', ')}`);
    if (err instanceof errors.JWSSignatureVerificationFailed) fail('the sign_out signature does not verify');
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
      fail('no host key matches the kid and alg of sign_out');
    fail('sign_out is not a valid signed JWT (RFC 7515 compact serialization)', err);
  }
  if (typeof typ !== 'string' || typ.toLowerCase().replace(/^application\//, '') !== HOST_SIGN_OUT_TYP)
    fail(`sign_out must have the JWT header typ "${HOST_SIGN_OUT_TYP}" (RFC 8725 §3.11)`);
  let claims: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    claims = parsed as Record<string, unknown>;
  } catch {
    fail('the sign_out payload is not a JSON object');
  }
  const { clockSkew: skew } = options;
  const now = Math.floor(options.now.getTime() / 1000);
  if (claims.iss !== options.hostId) fail('sign_out iss is not the configured host (HOST_ID)');
  const aud = claims.aud;
  if (!(aud === options.issuer || (Array.isArray(aud) && aud.length > 0 && aud.includes(options.issuer))))
    fail('sign_out aud is not the issuer of this server');
  if (!isNumericDate(claims.iat)) fail('sign_out must have a numeric iat');
  if (!isNumericDate(claims.exp)) fail('sign_out must have a numeric exp');
  if (claims.iat > now + skew) fail('sign_out was issued in the future (check the clock of the host)');
  if (claims.exp <= now - skew) fail('sign_out has expired');
  if (claims.exp <= claims.iat || claims.exp - claims.iat > options.maxAge)
    fail(`sign_out must expire within ${options.maxAge} seconds of iat`);
  if (!isId(claims.jti)) fail(`sign_out must have a jti of 1 to ${MAX_ID_LENGTH} characters (it is accepted once)`);
  const sub = claims.sub ?? null;
  const sid = claims.sid ?? null;
  if (sub !== null && !isId(sub)) fail(`sign_out sub must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  if (sid !== null && !isId(sid)) fail(`sign_out sid must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  if (sub === null && sid === null) fail('sign_out must name sub, sid or both');
  return { jti: claims.jti, exp: claims.exp, sub, sid };
}
