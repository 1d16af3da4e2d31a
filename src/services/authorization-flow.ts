import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuthorizationRequestRow } from '../db/tables/authorization-request.table.js';
import { isLoopbackUrl } from '../oauth/checks/redirect-uri.js';
import { OAuthError, rfcDescription } from '../oauth/errors.js';
import { generateToken, hashSecret } from '../oauth/secrets.js';
import { createAuthorizationCode } from '../repositories/authorization-code.repository.js';
import { completeAuthorizationRequest } from '../repositories/authorization-request.repository.js';
import { findConsent, saveConsent } from '../repositories/consent.repository.js';
import type { Client } from '../oauth/client.js';

/** The signed-in user as the flow needs them (a Gatehouse session). */
export interface FlowSession {
  idHash: string;
  sub: string;
  authTime: Date;
}

/** The client's redirect URI with response parameters added, keeping any query it already has (RFC 6749 §3.1.2). */
export function clientRedirect(
  pending: Pick<AuthorizationRequestRow, 'redirect_uri' | 'state'>,
  issuer: string,
  params: Record<string, string>,
): string {
  const url = new URL(pending.redirect_uri);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  if (pending.state !== null) url.searchParams.set('state', pending.state);
  // RFC 9207 §2: iss in every authorization response, success or error.
  url.searchParams.set('iss', issuer);
  return url.toString();
}

function redirect(reply: FastifyReply, location: string): FastifyReply {
  // RFC 9700 §4.12: 303, so a POST (consent, sign-in) becomes a GET at the client.
  return reply
    .code(303)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
}

/**
 * RFC 9700 §4.11.2: the authorization server must not become a phishing redirector, so it sends the
 * browser on its own only to redirect URIs it trusts. An operator vetted those of admin and CLIENTS_FILE
 * clients; a dynamically registered or metadata-document client is anyone's to create.
 */
export function trustsRedirect(client: Pick<Client, 'source'>): boolean {
  return client.source === 'admin' || client.source === 'file';
}

export interface FinishOptions {
  /** The user has just seen this client's redirect host on the consent page and chose (Deny). */
  userSawDestination?: boolean;
}

/**
 * Ends a pending request with an error (RFC 6749 §4.1.2.1). Completing the row first means an error is
 * sent at most once. The browser is redirected to the client's (already validated) redirect URI when the
 * client still exists and is enabled and its redirect is trusted, or the user has just seen where it
 * goes; otherwise Gatehouse shows the error on its own page and links nowhere (§4.11.2).
 */
export async function finishWithError(
  app: FastifyInstance,
  reply: FastifyReply,
  pending: AuthorizationRequestRow,
  error: OAuthError,
  options: FinishOptions = {},
): Promise<FastifyReply> {
  const done = await completeAuthorizationRequest(app.database.db, pending.id);
  if (!done)
    throw new OAuthError('invalid_request', 'this authorization request has already been completed or has expired');
  const client = await app.clients.get(pending.client_id);
  if (!client || client.disabled_at) throw new OAuthError('invalid_request', 'the client is unknown or disabled');
  const location = clientRedirect(pending, app.issuer, {
    error: error.error,
    error_description: rfcDescription(error.description),
  });
  if (trustsRedirect(client) || options.userSawDestination) return redirect(reply, location);
  throw new OAuthError(error.error, error.description, { status: error.status });
}

/** Whether a stored consent already covers the request (scopes and resources). */
async function consentCovers(app: FastifyInstance, pending: AuthorizationRequestRow, sub: string): Promise<boolean> {
  const consent = await findConsent(app.database.db, sub, pending.client_id);
  if (!consent) return false;
  const scopes = new Set(consent.scopes);
  const resources = new Set(consent.resources);
  return pending.scopes.every((s) => scopes.has(s)) && pending.resources.every((r) => resources.has(r));
}

/**
 * Whether a public client's redirect gives no assurance of who receives the code: a loopback port or a
 * private-use scheme can be claimed by any app on the device (RFC 8252 §8.6, RFC 6749 §10.2).
 */
export function unverifiableRedirect(client: Pick<Client, 'token_endpoint_auth_method'>, redirectUri: string): boolean {
  if (client.token_endpoint_auth_method !== 'none') return false;
  return isLoopbackUrl(redirectUri) || !/^https?:/i.test(redirectUri);
}

/** Whether this request must show the consent page. */
export async function needsConsent(
  app: FastifyInstance,
  client: Client,
  pending: AuthorizationRequestRow,
  sub: string,
): Promise<boolean> {
  // OIDC Core §3.1.2.1: prompt=consent always asks, even a first-party client.
  if (pending.prompt === 'consent') return true;
  // Dynamically registered and metadata-document clients never skip consent, whatever their flag says.
  if (client.skip_consent && client.source !== 'registration' && client.source !== 'metadata_document') return false;
  // Remembered consent is not trusted when another local app could be posing as this client.
  if (unverifiableRedirect(client, pending.redirect_uri)) return true;
  return !(await consentCovers(app, pending, sub));
}

/** Issues the authorization code and sends the browser to the client with it. */
export async function issueCode(
  app: FastifyInstance,
  reply: FastifyReply,
  pending: AuthorizationRequestRow,
  session: FlowSession,
  options: { rememberConsent?: boolean } = {},
): Promise<FastifyReply> {
  const done = await completeAuthorizationRequest(app.database.db, pending.id);
  if (!done)
    throw new OAuthError('invalid_request', 'this authorization request has already been completed or has expired');
  // Only the decision that completed the request is remembered: an Allow that lost a race to a Deny
  // (two tabs, a double submit) stores nothing.
  if (options.rememberConsent)
    await saveConsent(app.database.db, session.sub, pending.client_id, pending.scopes, pending.resources);
  const code = generateToken();
  await createAuthorizationCode(app.database.db, {
    code_hash: hashSecret(code),
    client_id: pending.client_id,
    redirect_uri: pending.redirect_uri,
    redirect_uri_given: pending.redirect_uri_given,
    code_challenge: pending.code_challenge,
    scopes: pending.scopes,
    resources: pending.resources,
    sub: session.sub,
    auth_time: session.authTime,
    expires_at: new Date(Date.now() + app.config.flow.codeTtl * 1000),
    consumed_at: null,
    family_id: null,
  });
  return redirect(reply, clientRedirect(pending, app.issuer, { code }));
}

/**
 * Continues a pending request once a user is signed in: to the consent page when needed, otherwise
 * straight to the client with a code. Called by /authorize (existing session), /sign-in/complete and /consent.
 */
export async function continueAuthorization(
  app: FastifyInstance,
  reply: FastifyReply,
  pending: AuthorizationRequestRow,
  session: FlowSession,
): Promise<FastifyReply> {
  const client = await app.clients.get(pending.client_id);
  if (!client || client.disabled_at) throw new OAuthError('invalid_request', 'the client is unknown or disabled');
  if (await needsConsent(app, client, pending, session.sub)) {
    // OIDC Core §3.1.2.1: prompt=none never shows a page.
    if (pending.prompt === 'none')
      return finishWithError(
        app,
        reply,
        pending,
        new OAuthError('consent_required', 'the user has not consented to this client'),
      );
    return redirect(reply, `${app.issuer}/consent?request=${encodeURIComponent(pending.id)}`);
  }
  return issueCode(app, reply, pending, session);
}
