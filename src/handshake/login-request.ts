import type { FastifyInstance, FastifyReply } from 'fastify';
import { SignJWT } from 'jose';
import type { Config } from '../config/index.js';
import type { AuthorizationRequestRow } from '../db/tables/authorization-request.table.js';
import type { SigningKey } from '../keys/key-store.js';
import { OAuthError } from '../oauth/errors.js';
import type { Client } from '../oauth/client.js';

/** RFC 8725 §3.11: the explicit type of Gatehouse's sign-in request. */
export const LOGIN_REQUEST_TYP = 'login-request+jwt';

/** Where the host sends its answer, relative to the issuer. */
export const SIGN_IN_COMPLETE_PATH = '/sign-in/complete';

/** What createLoginRequest needs: the app itself fits. */
export interface LoginRequestDeps {
  config: Readonly<Pick<Config, 'handshake'>>;
  issuer: string;
  keys: { current(): SigningKey };
}

type PendingForSignIn = Pick<
  AuthorizationRequestRow,
  'id' | 'expires_at' | 'prompt' | 'max_age' | 'login_hint' | 'ui_locales'
>;

/** The hints of a login_request: only those the authorization request carried. */
function hints(pending: PendingForSignIn, client: Pick<Client, 'client_id' | 'name'>): Record<string, string | number> {
  const out: Record<string, string | number> = { client_id: client.client_id, client_name: client.name };
  if (pending.prompt !== null) out.prompt = pending.prompt;
  if (pending.max_age !== null) out.max_age = pending.max_age;
  if (pending.login_hint !== null) out.login_hint = pending.login_hint;
  if (pending.ui_locales !== null) out.ui_locales = pending.ui_locales;
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
  const { signInUrl, hostId, secret } = deps.config.handshake;
  if (signInUrl === '') throw new OAuthError('server_error', 'sign-in is not configured on this server (SIGN_IN_URL)');
  const jwt = new SignJWT({ ...hints(pending, client), return_to: `${deps.issuer}${SIGN_IN_COMPLETE_PATH}` })
    .setIssuer(deps.issuer)
    .setAudience(hostId)
    .setJti(pending.id)
    .setIssuedAt()
    .setExpirationTime(Math.floor(pending.expires_at.getTime() / 1000));
  let token: string;
  if (secret !== '') {
    token = await jwt
      .setProtectedHeader({ alg: 'HS256', typ: LOGIN_REQUEST_TYP })
      .sign(new TextEncoder().encode(secret));
  } else {
    const signer = deps.keys.current();
    token = await jwt.setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: LOGIN_REQUEST_TYP }).sign(signer.key);
  }
  const url = new URL(signInUrl);
  url.searchParams.set('login_request', token);
  return url.toString();
}

/** Answers 303 to the host's sign-in page for a pending request that needs a signed-in user. */
export async function redirectToSignIn(
  app: FastifyInstance,
  reply: FastifyReply,
  pending: PendingForSignIn,
  client: Pick<Client, 'client_id' | 'name'>,
): Promise<FastifyReply> {
  const location = await createLoginRequest(app, pending, client);
  // RFC 9700 §4.12: 303; no-store because the URL carries a one-off signed request.
  return reply
    .code(303)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
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
  now: Date = new Date(),
  skewSeconds = 0,
): boolean {
  const authTime = session.authTime.getTime();
  const skew = skewSeconds * 1000;
  // auth_time is whole seconds: compare against the request's creation truncated to its second.
  if (pending.prompt === 'login' && authTime < Math.floor(pending.created_at.getTime() / 1000) * 1000 - skew)
    return false;
  if (pending.max_age !== null && authTime < now.getTime() - pending.max_age * 1000 - skew) return false;
  return true;
}
