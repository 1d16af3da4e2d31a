import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import { type VerificationKeys, verificationKeys, verifyCompact } from './jws.js';

/** The claims of a verified Gatehouse access token (RFC 9068 §2.2), as issueAccessToken writes them. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  client_id: string;
  scope?: string;
  jti: string;
  iat: number;
  exp: number;
  auth_time?: number;
  /** RFC 9449 §6.1: the DPoP key the token is bound to. */
  cnf?: { jkt: string };
}

/** What a Gatehouse access token must match besides its signature. */
export interface AccessTokenVerifierOptions {
  /** Gatehouse's own issuer: the only `iss` accepted. */
  issuer: string;
  /** Seconds of tolerance on `exp` (CLOCK_SKEW_SECONDS), for replicas whose clocks differ slightly. */
  clockSkew: number;
  /** The time `exp` is checked against; the system clock by default. */
  clock?: Clock;
  /**
   * Where tokens whose signature verified are remembered until they expire (VERIFIED_TOKENS entries by
   * default); a test passes its own to look inside.
   */
  verified?: TtlCache<RememberedToken>;
}

/**
 * How many verified access tokens each verifier remembers. A resource server that introspects (or a client
 * that calls userinfo) on every API call presents the same token again and again; each entry holds one token
 * of ours and its payload, about 1–2 KB, so the bound keeps it to a few megabytes.
 */
export const VERIFIED_TOKENS = 4096;

/** A remembered token: its payload, and the key it verified under (which must still be published). */
export interface RememberedToken {
  kid: string;
  payload: Readonly<Record<string, unknown>>;
}

/** Where the verifier reads Gatehouse's published keys: the current JWK Set, read on every call. */
export type PublishedKeys = () => JwkSet;

/** A verified access token's claims, or null for anything that is not a live access token of ours. */
export type AccessTokenVerifier = (token: string) => Promise<AccessTokenClaims | null>;

function isStringList(value: unknown): value is string | string[] {
  return (
    typeof value === 'string' || (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string'))
  );
}

/** RFC 7519 §4.1.4 / §4.1.5: a NumericDate claim, when present, is a number. */
const numericOrAbsent = (value: unknown) => value === undefined || typeof value === 'number';

/**
 * Verifies access tokens against Gatehouse's own published keys (next, active and retired, read from
 * `keys()` on every call, so a rotation or an immediate retirement applies as soon as this process sees
 * it). The public keys are imported once per published JWKS object; the signature is checked synchronously
 * with node:crypto (jws.ts: only the algorithms Gatehouse signs with, the key named by `kid` and of that
 * algorithm, no `crit`), then the claims as RFC 9068 §4 asks: `typ` at+jwt, our `iss`, `exp` not passed
 * (CLOCK_SKEW_SECONDS of tolerance), `nbf` not ahead.
 *
 * A token whose signature and claims verified is remembered, by its exact text, until its `exp` (plus the
 * skew): presented again, its signature is not checked again, but every claim is, against the time of that
 * call. The memory is emptied whenever the published key set changes in content (a key published, promoted
 * or retired), so a token of a key retired immediately is refused as soon as this process sees the
 * retirement, as without the memory. Only a token that verified can enter it, and each entry is one
 * token's text: nothing an attacker sends can make another token pass. Revocation is the caller's to
 * check on every call, as before.
 */
export function accessTokenVerifier(keys: PublishedKeys, options: AccessTokenVerifierOptions): AccessTokenVerifier {
  let published: JwkSet | undefined;
  let publishedKeys: string | undefined;
  let local: VerificationKeys | undefined;
  const remembered = options.verified ?? new TtlCache<RememberedToken>(VERIFIED_TOKENS);
  return async (token) => {
    const jwks = keys();
    if (jwks !== published || !local) {
      // The key store publishes a new JWKS object at every reload; only a change of keys forgets.
      const content = JSON.stringify(jwks.keys);
      if (content !== publishedKeys) remembered.clear();
      publishedKeys = content;
      local = verificationKeys(jwks);
      published = jwks;
    }
    const nowMs = (options.clock ? options.clock() : new Date()).getTime();
    const entry = remembered.get(token, nowMs);
    // The key it verified under must still be published (the memory is emptied when keys change; this also
    // holds for a memory a caller shares between verifiers).
    const known = entry !== undefined && local.has(entry.kid);
    let payload: Readonly<Record<string, unknown>>;
    let kid: string;
    if (known) {
      ({ payload, kid } = entry);
    } else {
      // RFC 9068 §4 / RFC 8725 §3.11: a login_request or any other JWT signed with the same keys is not an
      // access token. RFC 8725 §3.1: only the algorithms Gatehouse signs with; never `none`, never HS*.
      const verified = verifyCompact(token, local, 'at+jwt');
      if (!verified) return null;
      payload = verified.payload;
      kid = verified.header.kid as string;
    }
    const now = Math.floor(nowMs / 1000);
    const { nbf } = payload;
    if (!numericOrAbsent(nbf) || (typeof nbf === 'number' && nbf > now + options.clockSkew)) return null;
    if (typeof payload.exp !== 'number' || payload.exp <= now - options.clockSkew) return null;
    if (payload.iss !== options.issuer) return null;
    const { iss, sub, aud, client_id: clientId, scope, jti, iat, exp, auth_time: authTime, cnf } = payload;
    // Our own signature makes these hold; the checks keep a malformed token of ours from becoming a 500.
    if (typeof iss !== 'string' || typeof sub !== 'string' || !isStringList(aud) || typeof clientId !== 'string')
      return null;
    if (typeof jti !== 'string' || typeof iat !== 'number' || typeof exp !== 'number') return null;
    if (scope !== undefined && typeof scope !== 'string') return null;
    if (authTime !== undefined && typeof authTime !== 'number') return null;
    const jkt = (cnf as { jkt?: unknown } | undefined)?.jkt;
    if (cnf !== undefined && typeof jkt !== 'string') return null;
    if (!known) {
      // Frozen: every later call for this token reads the same payload.
      if (Array.isArray(aud)) Object.freeze(aud);
      remembered.set(token, { kid, payload: Object.freeze(payload) }, (exp + options.clockSkew) * 1000);
    }
    return {
      iss,
      sub,
      aud,
      client_id: clientId,
      ...(scope !== undefined ? { scope } : {}),
      jti,
      iat,
      exp,
      ...(authTime !== undefined ? { auth_time: authTime } : {}),
      ...(typeof jkt === 'string' ? { cnf: { jkt } } : {}),
    };
  };
}
