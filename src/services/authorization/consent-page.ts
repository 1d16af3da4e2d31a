import type { AuthorizationRequestRow } from '../../db/tables/authorization-request.table.js';
import { isLoopbackHost } from '../../lib/loopback.js';
import { OPENID_SCOPE, STANDARD_IDENTITY_SCOPES } from '../../lib/oidc-claims.js';
import type { Client } from '../../oauth/client.js';
import type { Session } from '../sessions/session-service.js';

/** A pending request waiting for consent, checked against the browser and session that may decide it. */
export interface Interaction {
  pending: AuthorizationRequestRow;
  session: Pick<Session, 'idHash' | 'sid' | 'sub' | 'authTime' | 'acr' | 'amr' | 'claims'>;
  client: Client;
}

/** Where the browser goes after the decision, as the page shows it. */
export function redirectTarget(redirectUri: string): { host: string; kind: 'web' | 'loopback' | 'app' } {
  const url = new URL(redirectUri);
  // RFC 8252 §7.1: a private-use scheme names an app on the device, not a host.
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { host: url.protocol.slice(0, -1), kind: 'app' };
  return { host: url.hostname, kind: isLoopbackHost(url.hostname) ? 'loopback' : 'web' };
}

function httpsOrNull(value: string | null): string | null {
  if (value === null) return null;
  try {
    return new URL(value).protocol === 'https:' ? value : null;
  } catch {
    return null;
  }
}

function claimText(claims: Record<string, unknown>, name: string): string | null {
  const value = claims[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, 200) : null;
}

/**
 * For a client resolved from its metadata document, the host its client_id URL names: its only verified
 * identity, which the page shows (draft-ietf-oauth-client-id-metadata-document-02 §8.5). `elsewhere`: the
 * browser will be sent to a web host other than that one, which the page points out.
 */
export function metadataDocumentIdentity(
  client: Pick<Client, 'client_id' | 'source'>,
  redirect: ReturnType<typeof redirectTarget>,
): { host: string; elsewhere: boolean } | null {
  if (client.source !== 'metadata_document') return null;
  const url = new URL(client.client_id);
  return { host: url.host, elsewhere: redirect.kind === 'web' && redirect.host !== url.hostname };
}

/**
 * What consent.eta renders (but the form's `action`, which the edge adds); every string is escaped by the
 * template engine. Identity scopes (OpenID Connect) are listed apart, as the personal data the app will
 * see ("your email address"): a standard scope (`standard`) in the page's own language, an operator's CLAIMS
 * scope in its configured words. Resources carry their RESOURCE_NAMES display name, or null.
 */
export function consentView(
  interaction: Interaction,
  catalogue: ReadonlyMap<string, string>,
  csrf: string,
  identityScopes: ReadonlyMap<string, { description: string }> = new Map(),
  resourceNames: ReadonlyMap<string, string> = new Map(),
) {
  const { pending, session, client } = interaction;
  const redirect = redirectTarget(pending.redirect_uri);
  const identity = metadataDocumentIdentity(client, redirect);
  return {
    client: {
      name: client.name,
      initial: /[\p{L}\p{N}]/u.exec(client.name)?.[0]?.toUpperCase() ?? '?',
      uri: httpsOrNull(client.client_uri),
      // A metadata document's logo is the client's own claim, loaded from its server by the user's
      // browser (draft §8.8, §9.2): the monogram is shown instead.
      logo: identity ? null : httpsOrNull(client.logo_uri),
      policy: httpsOrNull(client.policy_uri),
      tos: httpsOrNull(client.tos_uri),
    },
    identity,
    redirect,
    scopes: pending.scopes
      .filter((name) => !identityScopes.has(name))
      .map((name) => ({ name, description: catalogue.get(name) ?? name })),
    personalData: pending.scopes.flatMap((name) => {
      const scope = identityScopes.get(name);
      const standard = name === OPENID_SCOPE || STANDARD_IDENTITY_SCOPES.has(name);
      return scope ? [{ name, description: scope.description, standard }] : [];
    }),
    resources: pending.resources.map((uri) => ({ uri, name: resourceNames.get(uri) ?? null })),
    user: { name: claimText(session.claims, 'name'), email: claimText(session.claims, 'email'), sub: session.sub },
    requestId: pending.id,
    csrf,
  };
}
