import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorizationRequestRow } from '../../db/tables/authorization-request.table.js';
import { keyEncryptionSecret } from '../../keys/key-encryption.js';
import { hasBinding } from '../../oauth/browser-binding.js';
import { CsrfTokens } from '../../oauth/csrf.js';
import { OAuthError } from '../../oauth/errors.js';
import { sendPage } from '../../plugins/external/view.js';
import { findLiveAuthorizationRequest } from '../../repositories/authorization-request.repository.js';
import { type FlowSession, finishWithError, issueCode } from '../../services/authorization-flow.js';
import type { Client } from '../../oauth/client.js';
import { htmlErrorRenderer } from './error-page.js';
import { redirectTarget } from './redirect-target.js';

const FORM = 'application/x-www-form-urlencoded';
const CSRF_PURPOSE = 'consent';
/** Pending request ids are generated tokens (43 base64url characters); the bound only stops abuse. */
const REQUEST_ID = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' } as const;

const querySchema = {
  type: 'object',
  required: ['request'],
  properties: { request: REQUEST_ID },
} as const;

const bodySchema = {
  type: 'object',
  required: ['request', 'decision', 'csrf'],
  properties: {
    request: REQUEST_ID,
    decision: { type: 'string', enum: ['allow', 'deny'] },
    csrf: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

interface ConsentQuery {
  request: string;
}

interface ConsentBody {
  request: string;
  decision: 'allow' | 'deny';
  csrf: string;
}

/** A signed-in browser session as the consent page needs it (what `app.sessions.current` returns). */
interface ConsentSession extends FlowSession {
  claims: Record<string, unknown>;
}

interface Interaction {
  pending: AuthorizationRequestRow;
  session: ConsentSession;
  client: Client;
}

/** RFC 6749 §3.1: request parameters must not be included more than once. */
function rejectRepeated(params: unknown): void {
  if (!params || typeof params !== 'object') return;
  for (const [name, value] of Object.entries(params)) {
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`);
  }
}

function requireForm(request: FastifyRequest): void {
  const media = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (media !== FORM) throw new OAuthError('unsupported_media_type', `the consent form must be sent as ${FORM}`);
}

/** Loads the pending request and checks it belongs to this browser (binding cookie) and this signed-in session. */
async function loadInteraction(app: FastifyInstance, request: FastifyRequest, requestId: string): Promise<Interaction> {
  const pending = await findLiveAuthorizationRequest(app.database.db, requestId);
  if (!pending) {
    throw new OAuthError(
      'invalid_request',
      'this authorization request is unknown, has expired or was already completed; return to the application and start again',
    );
  }
  // The binding cookie first: another browser holding a leaked link learns nothing more.
  if (!hasBinding(request, app.config, pending.binding_hash)) {
    throw new OAuthError(
      'invalid_request',
      'this authorization request was started in another browser, or its cookie has expired; return to the application and start again',
      { status: 403 },
    );
  }
  const session = await app.sessions.current(request);
  // Both sides are SHA-256 hashes of 256-bit session ids: timing while comparing them reveals nothing usable.
  if (!session || pending.session_hash === null || session.idHash !== pending.session_hash) {
    throw new OAuthError(
      'invalid_request',
      'you are not signed in for this authorization request; return to the application and start again',
      { status: 403 },
    );
  }
  const client = await app.clients.get(pending.client_id);
  if (!client || client.disabled_at)
    throw new OAuthError('invalid_request', 'the application is unknown or has been disabled');
  return { pending, session, client };
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

/** What consent.eta renders; every string is escaped by the template engine. */
export function consentView(
  interaction: Interaction,
  catalogue: ReadonlyMap<string, string>,
  csrf: string,
  basePath: string,
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
    scopes: pending.scopes.map((name) => ({ name, description: catalogue.get(name) ?? name })),
    resources: pending.resources,
    user: { name: claimText(session.claims, 'name'), email: claimText(session.claims, 'email'), sub: session.sub },
    requestId: pending.id,
    csrf,
    action: `${basePath}/consent`,
  };
}

/** GET /consent shows what a client asks for; POST /consent records the user's decision and answers the client. */
export default async function consentRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app;
  const { catalogue } = config.policy.scopes;
  // Derived from KEY_ENCRYPTION_SECRET, never random per process: a form may be posted to another replica.
  const csrf = new CsrfTokens(keyEncryptionSecret(config, app.log));
  const routeConfig = { errorRenderer: htmlErrorRenderer, ...app.rateLimited };

  app.get<{ Querystring: ConsentQuery }>(
    '/consent',
    {
      schema: { querystring: querySchema },
      config: routeConfig,
      preValidation: async (request) => rejectRepeated(request.query),
    },
    async (request, reply: FastifyReply) => {
      const interaction = await loadInteraction(app, request, request.query.request);
      const token = csrf.issue(CSRF_PURPOSE, interaction.session.idHash, interaction.pending.id);
      // Allow and Deny both end in a 303 to the client, which the browser checks against form-action.
      return sendPage(reply, 'consent', consentView(interaction, catalogue, token, app.pageContext.basePath), 200, {
        formRedirects: [interaction.pending.redirect_uri],
      });
    },
  );

  app.post<{ Body: ConsentBody }>(
    '/consent',
    {
      schema: { body: bodySchema },
      config: routeConfig,
      preValidation: async (request) => {
        requireForm(request);
        rejectRepeated(request.body);
      },
    },
    async (request, reply: FastifyReply) => {
      const { pending, session } = await loadInteraction(app, request, request.body.request);
      if (!csrf.verify(request.body.csrf, CSRF_PURPOSE, session.idHash, pending.id)) {
        throw new OAuthError(
          'invalid_request',
          'the consent form was not valid for this sign-in; return to the application and start again',
          { status: 403 },
        );
      }
      if (request.body.decision === 'deny') {
        // The consent page showed where the browser goes next: the user chose it, even for an unvetted client.
        return finishWithError(app, reply, pending, new OAuthError('access_denied', 'the user denied the request'), {
          userSawDestination: true,
        });
      }
      // Straight to the code: continueAuthorization would send prompt=consent back to this page forever.
      return issueCode(app, reply, pending, session, { rememberConsent: true });
    },
  );
}
