import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ClientMetadataError } from '../../oauth/client-metadata.js';
import { OAuthError } from '../../oauth/errors.js';
import { clientInformation, metadataFromRegistration, registrationError } from '../../oauth/registration-metadata.js';
import { generateClientSecret, generateToken, hashSecret, verifySecret } from '../../oauth/secrets.js';
import { type Client, ClientServiceError } from '../../services/client-service.js';

const JSON_MEDIA = 'application/json';
/** RFC 6750 §2.1 b64token after the (case-insensitive) Bearer scheme. */
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** RFC 6750 §3.1: no error code when the request carried no token at all. */
const CHALLENGE = { 'www-authenticate': 'Bearer' };
const INVALID_TOKEN_CHALLENGE = { 'www-authenticate': 'Bearer error="invalid_token"' };

// Values are checked by validateClientMetadata, not here: a schema with types would let Ajv coerce
// (a string into a one-item array), and its errors could not name RFC 7591 §3.2.2 codes.
const bodySchema = { type: 'object' } as const;
const paramsSchema = {
  type: 'object',
  required: ['client_id'],
  properties: { client_id: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

type Body = Record<string, unknown>;
type Params = { client_id: string };

/** RFC 7591 §3.1: the registration request is a JSON document. */
function requireJson(request: FastifyRequest): void {
  const media = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (media !== JSON_MEDIA)
    throw new OAuthError('invalid_request', `the request body must be ${JSON_MEDIA} (RFC 7591 §3.1)`, { status: 415 });
}

/** The bearer token of a request: undefined when there is no Authorization header, null when it is not a Bearer token. */
function bearerToken(request: FastifyRequest): string | null | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1] ?? null;
}

/** RFC 6750 §3.1 invalid_token, with the challenge that fits what was (not) sent. */
function invalidToken(sent: boolean, description: string): OAuthError {
  return new OAuthError('invalid_token', description, { headers: sent ? INVALID_TOKEN_CHALLENGE : CHALLENGE });
}

function noStore(reply: FastifyReply): FastifyReply {
  // RFC 7591 §3.2.1: the response carries credentials.
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

/** Fills every field the request left out with null, so RFC 7592 §2.2 replacement defaults it. */
function replacement(metadata: Record<string, unknown>, current: Client): Record<string, unknown> {
  const out: Record<string, unknown> = { ...metadata };
  for (const field of [
    'redirect_uris',
    'post_logout_redirect_uris',
    'grant_types',
    'response_types',
    'token_endpoint_auth_method',
    'application_type',
    'client_uri',
    'logo_uri',
    'policy_uri',
    'tos_uri',
    'contacts',
  ]) {
    out[field] ??= null;
  }
  // Not RFC 7591 metadata but the operator's: a client must not widen its own resources, and keeps the
  // operator's default scopes that are still among its scopes.
  out.resources = [...current.resources];
  const scopes = out.scopes as string[];
  out.default_scopes =
    scopes.length > 0 ? current.default_scopes.filter((s) => scopes.includes(s)) : [...current.default_scopes];
  return out;
}

/**
 * POST /register (RFC 7591) and GET/PUT/DELETE /register/:client_id (RFC 7592). Registered only when
 * DCR_ENABLED. Clients are created through ClientService with source "registration" (never skip_consent);
 * the registration access token and any secret are returned once and stored only as SHA-256 hashes.
 */
export default async function registerRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app;
  const { initialAccessToken, alwaysReturnSecret } = config.registration;
  // Also decides whether redirect URIs look native when application_type is not given.
  const { nativeSchemes } = config.policy;
  const initialTokenHash = initialAccessToken ? hashSecret(initialAccessToken) : null;
  /** The client each RFC 7592 request authenticated as. */
  const authenticated = new WeakMap<FastifyRequest, Client>();

  /** RFC 7591 §3: with DCR_INITIAL_ACCESS_TOKEN set, only its bearer may register (constant-time compare). */
  async function checkInitialAccessToken(request: FastifyRequest): Promise<void> {
    if (initialTokenHash === null) return;
    const token = bearerToken(request);
    if (token === undefined)
      throw invalidToken(false, 'an initial access token is required to register a client (RFC 7591 §3)');
    if (token === null || !verifySecret(token, initialTokenHash))
      throw invalidToken(true, 'the initial access token is not valid');
  }

  /**
   * RFC 7592 §2.1: the registration access token must be this client's. A missing client, a client
   * registered another way and a wrong token all answer 401, so client ids cannot be probed.
   */
  async function authenticateRegistration(request: FastifyRequest<{ Params: Params }>): Promise<void> {
    const token = bearerToken(request);
    if (token === undefined) throw invalidToken(false, 'a registration access token is required (RFC 7592 §1)');
    const clientId = request.params.client_id;
    const client = clientId.length <= 255 ? await app.clients.find(clientId) : undefined;
    // verifySecret does the same work for a missing hash, so an unknown id costs as much as a known one.
    if (!verifySecret(token ?? '', client?.registration_access_token_hash ?? null) || !client) {
      throw invalidToken(true, 'the registration access token is not valid for this client');
    }
    authenticated.set(request, client);
  }

  function clientOf(request: FastifyRequest): Client {
    const client = authenticated.get(request);
    if (!client) throw invalidToken(true, 'the registration access token is not valid for this client');
    return client;
  }

  app.post<{ Body: Body }>(
    '/register',
    // RFC 7591 §5: open registration is a resource-exhaustion target, so it sits under the per-address limit.
    {
      schema: { body: bodySchema },
      config: { ...app.rateLimited },
      // Before the body is read, but after the rate limit's onRequest hook: failed guesses are counted too.
      preParsing: async (request, _reply, payload) => {
        await checkInitialAccessToken(request);
        return payload;
      },
      preValidation: async (request) => requireJson(request),
    },
    async (request, reply) => {
      const { metadata, scopes } = metadataFromRegistration(request.body, nativeSchemes);
      const registrationAccessToken = generateToken();
      let created;
      try {
        created = await app.clients.create(metadata, {
          source: 'registration',
          registrationAccessTokenHash: hashSecret(registrationAccessToken),
        });
      } catch (err) {
        if (err instanceof ClientMetadataError) throw registrationError(err, scopes);
        throw err;
      }
      // DCR_ALWAYS_RETURN_CLIENT_SECRET: a public client also gets a client_secret in this response, for
      // clients that fail without one. It is not stored and authenticates nothing: the client stays
      // token_endpoint_auth_method "none" and must not send it (a public client sending a secret is refused).
      const clientSecret = created.secret ?? (alwaysReturnSecret ? generateClientSecret() : null);
      return noStore(reply)
        .code(201)
        .send(clientInformation(created.client, app.issuer, { clientSecret, registrationAccessToken }));
    },
  );

  // RFC 7592 §2.1: the current configuration. The secret is never returned: only its hash is stored.
  app.get<{ Params: Params }>(
    '/register/:client_id',
    { schema: { params: paramsSchema }, onRequest: authenticateRegistration },
    async (request, reply) => {
      return noStore(reply)
        .code(200)
        .send(clientInformation(clientOf(request), app.issuer));
    },
  );

  // RFC 7592 §2.2: the request replaces the client's metadata; omitted fields take their defaults.
  app.put<{ Params: Params; Body: Body }>(
    '/register/:client_id',
    {
      schema: { params: paramsSchema, body: bodySchema },
      onRequest: authenticateRegistration,
      preValidation: async (request) => requireJson(request),
    },
    async (request, reply) => {
      const current = clientOf(request);
      const body = request.body;
      if (body.client_id !== current.client_id) {
        throw new OAuthError(
          'invalid_client_metadata',
          'client_id: must be present and equal the client_id of the registration client URI (RFC 7592 §2.2)',
        );
      }
      // RFC 7592 §2.2: a client_secret sent must be the current one. A public client has none stored; the
      // unstored one DCR_ALWAYS_RETURN_CLIENT_SECRET handed out cannot be checked, so it is ignored then.
      if (body.client_secret !== undefined && !(current.secret_hash === null && alwaysReturnSecret)) {
        if (typeof body.client_secret !== 'string' || !verifySecret(body.client_secret, current.secret_hash)) {
          throw new OAuthError(
            'invalid_client_metadata',
            "client_secret: does not match the client's current secret (RFC 7592 §2.2)",
          );
        }
      }
      const { metadata, scopes } = metadataFromRegistration(body, nativeSchemes);
      let updated;
      try {
        updated = await app.clients.update(current.client_id, replacement(metadata, current));
      } catch (err) {
        if (err instanceof ClientMetadataError) throw registrationError(err, scopes);
        if (err instanceof ClientServiceError && err.kind === 'not_found')
          throw invalidToken(true, 'the registration access token is not valid for this client');
        throw err;
      }
      // A secret appears only when this change made the client confidential (it is shown this once).
      return noStore(reply)
        .code(200)
        .send(clientInformation(updated.client, app.issuer, { clientSecret: updated.secret }));
    },
  );

  // RFC 7592 §2.3: deregistration; the client's grants and tokens go with it (database cascade).
  app.delete<{ Params: Params }>(
    '/register/:client_id',
    { schema: { params: paramsSchema }, onRequest: authenticateRegistration },
    async (request, reply) => {
      await app.clients.delete(clientOf(request).client_id);
      return noStore(reply).code(204).send();
    },
  );
}
