import { type CryptoKey, SignJWT } from 'jose';
import type { Config } from '../config/index.js';
import type { AuthorizationRequestRow } from '../db/tables/authorization-request.table.js';
import { type Clock, epochSeconds } from '../lib/clock.js';
import { hasPrompt } from '../oauth/checks/prompt.js';
import type { Client } from '../oauth/client.js';
import { OAuthError } from '../oauth/errors.js';

/** RFC 8725 §3.11: the explicit type of Gatehouse's sign-in request. */
export const LOGIN_REQUEST_TYP = 'login-request+jwt';

/** Where the host sends its answer, relative to the issuer. */
export const SIGN_IN_COMPLETE_PATH = '/sign-in/complete';

/** A private key to sign a login_request with (Gatehouse's active signing key fits). */
export interface LoginRequestSigner {
  readonly kid: string;
  readonly alg: string;
  readonly key: CryptoKey;
}

/** What createLoginRequest needs: the handshake settings, the issuer, the active key and the time. */
export interface LoginRequestDeps {
  handshake: Readonly<Pick<Config['handshake'], 'signInUrl' | 'hostId' | 'secret'>>;
  issuer: string;
  /** The active signing key, asked for only when there is no HANDSHAKE_SECRET. */
  signer: () => LoginRequestSigner;
  clock: Clock;
}

type PendingForSignIn = Pick<
  AuthorizationRequestRow,
  'id' | 'expires_at' | 'prompt' | 'max_age' | 'login_hint' | 'ui_locales' | 'acr_values' | 'id_token_hint_sub'
>;

/** The hints of a login_request: only those the authorization request carried. */
function hints(pending: PendingForSignIn, client: Pick<Client, 'client_id' | 'name'>): Record<string, string | number> {
  const out: Record<string, string | number> = { client_id: client.client_id, client_name: client.name };
  if (pending.prompt !== null) out.prompt = pending.prompt;
  if (pending.max_age !== null) out.max_age = pending.max_age;
  if (pending.login_hint !== null) out.login_hint = pending.login_hint;
  if (pending.ui_locales !== null) out.ui_locales = pending.ui_locales;
  // OIDC Core §3.1.2.1: the host decides how to authenticate; its answer's acr says what it did.
  if (pending.acr_values !== null) out.acr_values = pending.acr_values;
  // The sub of a verified id_token_hint: the user the client expects (docs/handshake.md).
  if (pending.id_token_hint_sub !== null) out.id_token_hint_sub = pending.id_token_hint_sub;
  return out;
}

/**
 * The host's sign-in URL with `login_request=<JWT>` added (any query SIGN_IN_URL has is kept). The JWT
 * is HS256 under HANDSHAKE_SECRET when one is set, else signed with Gatehouse's active key (verifiable
 * against its JWKS); it lives exactly as long as the pending request.
 */
export async function createLoginRequest(
  deps: LoginRequestDeps,
  pending: PendingForSignIn,
  client: Pick<Client, 'client_id' | 'name'>,
): Promise<string> {
  return signLoginRequest(deps, hints(pending, client), pending.id, pending.expires_at);
}

/**
 * A login_request for one of Gatehouse's own account pages (the connected-apps page): no client asks, so
 * it carries no client_id, client_name or hints (docs/connected-apps.md). `jti` is the signed state the
 * answer must echo as `request`; the host answers it exactly as it answers any other login_request.
 */
export async function createAccountLoginRequest(deps: LoginRequestDeps, jti: string, expiresAt: Date): Promise<string> {
  return signLoginRequest(deps, {}, jti, expiresAt);
}

async function signLoginRequest(
  deps: LoginRequestDeps,
  claims: Record<string, string | number>,
  jti: string,
  expiresAt: Date,
): Promise<string> {
  const { signInUrl, hostId, secret } = deps.handshake;
  if (signInUrl === '') throw new OAuthError('server_error', 'sign-in is not configured on this server (SIGN_IN_URL)');
  const jwt = new SignJWT({ ...claims, return_to: `${deps.issuer}${SIGN_IN_COMPLETE_PATH}` })
    .setIssuer(deps.issuer)
    .setAudience(hostId)
    .setJti(jti)
    .setIssuedAt(epochSeconds(deps.clock))
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000));
  let token: string;
  if (secret !== '') {
    token = await jwt
      .setProtectedHeader({ alg: 'HS256', typ: LOGIN_REQUEST_TYP })
      .sign(new TextEncoder().encode(secret));
  } else {
    const signer = deps.signer();
    token = await jwt.setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: LOGIN_REQUEST_TYP }).sign(signer.key);
  }
  const url = new URL(signInUrl);
  url.searchParams.set('login_request', token);
  return url.toString();
}

/**
 * Whether a sign-in (an existing session's, or a fresh answer's) is recent enough for the request:
 * prompt=login needs one made after the request was created, max_age one at most max_age seconds old
 * (OpenID Connect Core §3.1.2.1). `skewSeconds` tolerates the host's clock running behind; /authorize
 * judging an existing session passes 0.
 */
export function sessionSatisfies(
  session: { authTime: Date },
  pending: Pick<AuthorizationRequestRow, 'prompt' | 'max_age' | 'created_at'>,
  now: Date,
  skewSeconds = 0,
): boolean {
  const authTime = session.authTime.getTime();
  const skew = skewSeconds * 1000;
  // auth_time is whole seconds: compare against the request's creation truncated to its second.
  if (hasPrompt(pending.prompt, 'login') && authTime < Math.floor(pending.created_at.getTime() / 1000) * 1000 - skew)
    return false;
  if (pending.max_age !== null && authTime < now.getTime() - pending.max_age * 1000 - skew) return false;
  return true;
}
