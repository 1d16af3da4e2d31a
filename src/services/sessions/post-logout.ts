import { type Client, isOperatorClient } from '../../oauth/client.js';

/** What /sign-out was asked (OpenID Connect RP-Initiated Logout §2). */
export interface SignOutParams {
  client_id?: string;
  post_logout_redirect_uri?: string;
  state?: string;
}

/**
 * Where to send the browser after signing out: post_logout_redirect_uri only when it is exactly one the
 * named client registered (OpenID Connect RP-Initiated Logout §3); anything else gets the signed-out
 * page (null), so /sign-out is never an open redirect. With no id_token_hint to prove the client asked,
 * only an operator's clients count: a dynamically registered or metadata-document client is anyone's to
 * create, and following its list would let anyone bounce a browser through Gatehouse (RFC 9700 §4.11.2).
 */
export async function postLogoutRedirect(
  clients: { get(clientId: string): Promise<Client | undefined> },
  params: SignOutParams,
): Promise<string | null> {
  const uri = params.post_logout_redirect_uri;
  if (!uri || !params.client_id) return null;
  const client = await clients.get(params.client_id);
  if (!client || client.disabled_at || !isOperatorClient(client)) return null;
  if (!client.post_logout_redirect_uris.includes(uri)) return null;
  const url = new URL(uri);
  if (params.state) url.searchParams.set('state', params.state);
  return url.toString();
}
