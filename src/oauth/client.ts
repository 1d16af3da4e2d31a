import type { ClientRow } from '../db/tables/client.table.js';

/**
 * A client as the protocol sees it: a frozen stored row (cached rows are shared between requests).
 * The domain type every layer above storage uses; services hand these out.
 */
export type Client = Readonly<ClientRow>;

/**
 * Whether an operator vetted this client (admin API, CLI or CLIENTS_FILE). A dynamically registered or
 * client-id-document client is anyone's to create, so it is never trusted for what only a vetted client
 * may do: be redirected to without the user seeing where (RFC 9700 §4.11.2), skip consent, use
 * client_credentials, speak for a resource at /introspect, or receive a post-logout redirect without an
 * id_token_hint. An allow-list: a source added later is untrusted until it is listed here.
 */
export function isOperatorClient(client: { readonly source: string }): boolean {
  return client.source === 'admin' || client.source === 'file';
}
