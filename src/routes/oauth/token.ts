import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Config, parseResourceList, parseScopeCatalogue } from '../../config.js';
import { authenticateClient } from '../../oauth/client-authentication.js';
import { OAuthError } from '../../oauth/errors.js';
import { resourcePolicy } from '../../oauth/checks/resource.js';
import { clientCredentials } from '../../oauth/grants/client-credentials.js';
import type { GrantContext, GrantHandler, TokenParams } from '../../oauth/grants/grant.js';

const FORM = 'application/x-www-form-urlencoded';
/** Parameters that RFC 8707 §2 lets a client repeat; every other one must appear once (RFC 6749 §3.2). */
const REPEATABLE = new Set(['resource']);

const bodySchema = {
  type: 'object',
  required: ['grant_type'],
  properties: {
    grant_type: { type: 'string', maxLength: 128 },
    scope: { type: 'string', maxLength: 2048 },
    resource: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 2048 } },
    client_id: { type: 'string', maxLength: 512 },
    client_secret: { type: 'string', maxLength: 512 },
    code: { type: 'string', maxLength: 512 },
    code_verifier: { type: 'string', maxLength: 256 },
    redirect_uri: { type: 'string', maxLength: 2048 },
    refresh_token: { type: 'string', maxLength: 512 },
  },
} as const;

/** RFC 6749 §3.2: the token endpoint takes application/x-www-form-urlencoded only. */
function requireForm(request: FastifyRequest): void {
  const type = request.headers['content-type'];
  const media = type?.split(';')[0]?.trim().toLowerCase();
  if (media === FORM) return;
  if (!type) throw new OAuthError('invalid_request', `the request body must be ${FORM}`);
  throw new OAuthError('invalid_request', `the request body must be ${FORM}`, { status: 415 });
}

/** RFC 6749 §3.2: no parameter more than once; §3.1: an empty parameter counts as omitted. */
function normaliseParams(request: FastifyRequest): void {
  const raw = (request.body ?? {}) as Record<string, string | string[]>;
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (REPEATABLE.has(name)) {
      const values = (Array.isArray(value) ? value : [value]).filter((v) => v !== '');
      if (values.length > 0) out[name] = values;
      continue;
    }
    if (Array.isArray(value)) throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.2)`);
    if (value !== '') out[name] = value;
  }
  out.resource ??= [];
  request.body = out;
}

/** POST /token: authenticates the client, then hands the request to its grant type's handler. */
export default async function tokenRoute(app: FastifyInstance, { config }: { config: Readonly<Config> }): Promise<void> {
  const grants = new Map<string, GrantHandler>([[clientCredentials.grantType, clientCredentials]]);
  const ctx: GrantContext = {
    config,
    scopePolicy: { catalogue: parseScopeCatalogue(config.scopes.catalogue), enforce: config.scopes.enforce },
    resourcePolicy: resourcePolicy(parseResourceList(config.resources.list), parseResourceList(config.resources.defaultResource)),
    signer: () => app.keys.current(),
  };

  app.post<{ Body: TokenParams }>(
    '/token',
    {
      schema: { body: bodySchema },
      preValidation: async (request) => {
        requireForm(request);
        normaliseParams(request);
      },
    },
    async (request, reply: FastifyReply) => {
      const params = request.body;
      const grant = grants.get(params.grant_type);
      if (!grant) throw new OAuthError('unsupported_grant_type', `unsupported grant_type: ${params.grant_type}`);
      const { client } = await authenticateClient({ authorization: request.headers.authorization, body: params }, app.clients);
      if (!client.grant_types.includes(grant.grantType)) {
        throw new OAuthError('unauthorized_client', `this client may not use ${grant.grantType}`);
      }
      const response = await grant.handle(params, client, ctx);
      // RFC 6749 §5.1: token responses must not be cached.
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(response);
    },
  );
}
