import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import { type Client, isOperatorClient } from '../../oauth/client.js';
import { OAuthError } from '../../oauth/errors.js';
import { type IdTokenHint, verifyIdTokenHint } from '../../oauth/tokens/id-token-hint.js';
import type { Session } from './session-service.js';

/** What /sign-out (the end_session_endpoint) was asked (OpenID Connect RP-Initiated Logout 1.0 §2). */
export interface SignOutParams {
  id_token_hint?: string;
  client_id?: string;
  post_logout_redirect_uri?: string;
  state?: string;
  /** Accepted; Gatehouse has one session per browser, so the hint changes nothing. */
  logout_hint?: string;
  /** Accepted; the pages are in English only. */
  ui_locales?: string;
}

/** The sign-out parameters, in the order the confirmation form carries them. */
export const SIGN_OUT_PARAMS = [
  'id_token_hint',
  'client_id',
  'post_logout_redirect_uri',
  'state',
  'logout_hint',
  'ui_locales',
] as const satisfies ReadonlyArray<keyof SignOutParams>;

/** What signing out needs. */
export interface SignOutDeps {
  clients: { get(clientId: string): Promise<Client | undefined> };
  /** Gatehouse's published keys (the id_token_hint must verify against one). */
  jwks: () => JwkSet;
  issuer: string;
  clock: Clock;
  clockSkew: number;
  /** SESSION_ABSOLUTE_TTL_SECONDS: the oldest hint that can come from a recent session. */
  sessionAbsoluteTtl: number;
}

/** What /sign-out will do. */
export interface SignOutPlan {
  /** The post-logout redirect (with `state`), or null for the signed-out page. */
  redirect: string | null;
  /** Whether a valid id_token_hint names this browser's signed-in user (and its session, when it has `sid`). */
  hintMatchesSession: boolean;
  /** Whether there was a hint and it names someone or something else than this browser's session. */
  hintForAnother: boolean;
}

/**
 * Decides what a sign-out request means, before anything ends. An id_token_hint must verify (else an
 * error page: RP-Initiated Logout §2, the OP MUST validate it issued it); with client_id too, they must
 * name the same client (§2). The redirect goes to post_logout_redirect_uri only when it exactly equals one
 * the client registered (§3): the hint's client, else client_id's. A valid hint proves the client asked,
 * so any client's registered URI will do; without one only an operator's clients count: a dynamically
 * registered or metadata-document client is anyone's to create, and following its list would let anyone
 * bounce a browser through Gatehouse (RFC 9700 §4.11.2). Anything else gets the signed-out page, so
 * /sign-out is never an open redirect.
 */
export async function planSignOut(
  deps: SignOutDeps,
  params: SignOutParams,
  session: Pick<Session, 'sub' | 'sid'> | null,
): Promise<SignOutPlan> {
  let hint: IdTokenHint | null = null;
  if (params.id_token_hint !== undefined) {
    hint = await verifyIdTokenHint(params.id_token_hint, deps.jwks(), {
      issuer: deps.issuer,
      now: deps.clock(),
      clockSkew: deps.clockSkew,
      maxAge: deps.sessionAbsoluteTtl,
    });
    if (params.client_id !== undefined && params.client_id !== hint.clientId)
      throw new OAuthError('invalid_request', 'client_id is not the client the id_token_hint was issued to');
  }
  const hintMatchesSession =
    hint !== null && session !== null && hint.sub === session.sub && (hint.sid === null || hint.sid === session.sid);
  return {
    redirect: await postLogoutRedirect(deps.clients, params, hint),
    hintMatchesSession,
    hintForAnother: hint !== null && session !== null && !hintMatchesSession,
  };
}

async function postLogoutRedirect(
  clients: SignOutDeps['clients'],
  params: SignOutParams,
  hint: IdTokenHint | null,
): Promise<string | null> {
  const uri = params.post_logout_redirect_uri;
  const clientId = hint?.clientId ?? params.client_id;
  if (!uri || !clientId) return null;
  const client = await clients.get(clientId);
  if (!client || client.disabled_at) return null;
  if (hint === null && !isOperatorClient(client)) return null;
  if (!client.post_logout_redirect_uris.includes(uri)) return null;
  const url = new URL(uri);
  if (params.state) url.searchParams.set('state', params.state);
  return url.toString();
}
