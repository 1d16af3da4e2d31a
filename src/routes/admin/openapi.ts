import type { FastifyInstance } from 'fastify';
import { idParams, metadataBody } from './clients.js';
import { kidParams, retireBody } from './keys.js';
import { clientQuery, subParams } from './users.js';

/*
 * The admin listener's OpenAPI 3.1 document. Parameters and request bodies are the very JSON schemas the
 * routes validate with (imported above), so they cannot drift; responses are described here, and
 * test/admin-openapi.test.ts checks that the document names exactly the routes the admin app registers
 * and that real answers match the response schemas.
 */

type Schema = Record<string, unknown>;
type ObjectSchema = { readonly required?: readonly string[]; readonly properties: Record<string, unknown> };

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema) => ({ 'application/json': { schema } });
const ok = (description: string, schema: Schema) => ({ description, content: json(schema) });
const error = (description: string) => ({ description, content: json(ref('Error')) });

/** OpenAPI parameters from a route's params or querystring schema. */
function parameters(where: 'path' | 'query', schema: ObjectSchema): Schema[] {
  return Object.entries(schema.properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (schema.required ?? []).includes(name),
    schema: property,
  }));
}

const dateTime = { type: 'string', format: 'date-time' };
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' };
const strings = { type: 'array', items: { type: 'string' } };
const count = { type: 'integer', minimum: 0 };

const schemas: Record<string, Schema> = {
  AuditEvent: {
    description: 'One audit event (docs/audit.md): who, which client, from where, and non-secret details.',
    type: 'object',
    required: ['id', 'occurred_at', 'type', 'subject', 'client_id', 'actor', 'address', 'details'],
    properties: {
      id: { type: 'string' },
      occurred_at: dateTime,
      type: { type: 'string' },
      subject: { type: ['string', 'null'] },
      client_id: { type: ['string', 'null'] },
      actor: { enum: ['user', 'client', 'admin', 'system'] },
      address: { type: ['string', 'null'] },
      details: { type: 'object' },
    },
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: { error: { type: 'string' }, error_description: { type: 'string' } },
  },
  Client: {
    description:
      'A client: its RFC 7591 metadata (docs/admin-api.md lists the fields) and how it was made; never its stored secret hashes.',
    type: 'object',
    required: [
      'client_id',
      'name',
      'redirect_uris',
      'grant_types',
      'token_endpoint_auth_method',
      'scopes',
      'resources',
      'disabled_at',
    ],
    properties: {
      client_id: { type: 'string' },
      name: { type: 'string' },
      redirect_uris: strings,
      post_logout_redirect_uris: strings,
      grant_types: strings,
      response_types: strings,
      token_endpoint_auth_method: {
        enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      },
      scopes: strings,
      default_scopes: strings,
      resources: strings,
      application_type: { enum: ['web', 'native'] },
      skip_consent: { type: 'boolean' },
      source: { type: 'string' },
      disabled_at: nullableDateTime,
    },
    additionalProperties: true,
  },
  ClientWithSecret: {
    type: 'object',
    required: ['client'],
    properties: {
      client: ref('Client'),
      client_secret: { type: 'string', description: 'Shown once: only its hash is kept.' },
    },
  },
  Key: {
    type: 'object',
    required: ['kid', 'alg', 'state', 'source', 'published'],
    properties: {
      kid: { type: 'string' },
      alg: { type: 'string' },
      state: { enum: ['next', 'active', 'retired', 'published'] },
      source: { enum: ['database', 'file'] },
      published: { type: 'boolean', description: 'Whether the JWKS lists it now.' },
      createdAt: nullableDateTime,
      activateAt: nullableDateTime,
      activatedAt: nullableDateTime,
      retiredAt: nullableDateTime,
      expiresAt: nullableDateTime,
    },
  },
  ClientGrant: {
    type: 'object',
    required: ['client_id', 'consent', 'refresh_chains'],
    properties: {
      client_id: { type: 'string' },
      consent: {
        oneOf: [
          { type: 'null' },
          {
            type: 'object',
            required: ['scopes', 'resources'],
            properties: { scopes: strings, resources: strings, created_at: dateTime, updated_at: dateTime },
          },
        ],
      },
      refresh_chains: {
        type: 'array',
        items: {
          type: 'object',
          required: ['scopes', 'resources', 'auth_time', 'created_at', 'expires_at'],
          properties: {
            scopes: strings,
            resources: strings,
            auth_time: dateTime,
            created_at: dateTime,
            expires_at: dateTime,
          },
        },
      },
    },
  },
  RevokedGrants: {
    type: 'object',
    required: ['refresh_tokens', 'consents', 'authorization_codes', 'sessions'],
    properties: { refresh_tokens: count, consents: count, authorization_codes: count, sessions: count },
  },
};

const unauthorized = error('No or a wrong admin token (`WWW-Authenticate: Bearer realm="gatehouse-admin"`).');
const badRequest = error('`invalid_request`: a parameter or body fails its schema.');
const badMetadata = error(
  '`invalid_client_metadata`, `invalid_redirect_uri` or `invalid_request`: the metadata breaks a rule.',
);
const notFound = error('`not_found`.');
const conflict = error('`conflict`.');
const unavailable = error('`temporarily_unavailable`: the database cannot be reached (with `Retry-After`).');
/** Every /admin operation answers these besides its own. */
const common = { '401': unauthorized, '503': unavailable };
const security = [{ adminToken: [] }];

const clientPath = parameters('path', idParams);
const metadata = {
  required: true,
  content: json({ ...metadataBody, description: 'RFC 7591 client metadata (docs/admin-api.md).' }),
};

/** The admin API's OpenAPI 3.1 document (a fresh object each call). */
export function adminOpenApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse admin API',
      version: '1',
      description:
        'The admin listener (ADMIN_HOST:ADMIN_PORT): clients, a user’s grants and signing keys, plus health and metrics. Every /admin request needs `Authorization: Bearer <ADMIN_TOKEN>`; answers carry `Cache-Control: no-store`. A body larger than BODY_LIMIT_BYTES is refused with 413, one that is not JSON with 415.',
    },
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } },
      schemas,
    },
    paths: {
      '/healthz': {
        get: {
          summary: 'Liveness of the admin listener (no token).',
          responses: {
            '200': ok('Up.', { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }),
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (no token): counts and timings only.',
          responses: {
            '200': {
              description: 'The Prometheus text format.',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            '404': error('Metrics are off.'),
          },
        },
      },
      '/admin/openapi.json': {
        get: {
          summary: 'This document.',
          security,
          responses: { '200': ok('The OpenAPI 3.1 document.', { type: 'object' }), ...common },
        },
      },
      '/admin/clients': {
        get: {
          summary: 'Every client.',
          security,
          responses: {
            '200': ok('The clients.', {
              type: 'object',
              required: ['clients'],
              properties: { clients: { type: 'array', items: ref('Client') } },
            }),
            ...common,
          },
        },
        post: {
          summary: 'Registers a client (an optional `client_id` picks its id). The secret is in the answer, once.',
          security,
          requestBody: metadata,
          responses: {
            '201': ok('Created.', ref('ClientWithSecret')),
            '400': badMetadata,
            '409': error('`conflict`: the client_id is taken.'),
            ...common,
          },
        },
      },
      '/admin/clients/{client_id}': {
        parameters: clientPath,
        get: {
          summary: 'One client.',
          security,
          responses: {
            '200': ok('The client.', { type: 'object', required: ['client'], properties: { client: ref('Client') } }),
            '404': notFound,
            ...common,
          },
        },
        patch: {
          summary:
            'Changes the fields given, re-validating the whole client; `"disabled": true|false` disables or enables it.',
          security,
          requestBody: metadata,
          responses: {
            '200': ok(
              'The changed client; a public client made confidential gets a client_secret.',
              ref('ClientWithSecret'),
            ),
            '400': badMetadata,
            '404': notFound,
            ...common,
          },
        },
        delete: {
          summary: 'Deletes the client with its codes, tokens and consents.',
          security,
          responses: { '204': { description: 'Deleted.' }, '404': notFound, ...common },
        },
      },
      '/admin/clients/{client_id}/rotate-secret': {
        parameters: clientPath,
        post: {
          summary: 'A new client secret; the old one stops working at once.',
          security,
          responses: {
            '200': ok('The new secret, shown once.', {
              type: 'object',
              required: ['client_id', 'client_secret'],
              properties: { client_id: { type: 'string' }, client_secret: { type: 'string' } },
            }),
            '400': badRequest,
            '404': notFound,
            ...common,
          },
        },
      },
      '/admin/users/{sub}/grants': {
        parameters: parameters('path', subParams),
        get: {
          summary: 'What each client holds for the user: remembered consent and live refresh-token chains.',
          security,
          responses: {
            '200': ok('The grants.', {
              type: 'object',
              required: ['sub', 'grants'],
              properties: { sub: { type: 'string' }, grants: { type: 'array', items: ref('ClientGrant') } },
            }),
            ...common,
          },
        },
        delete: {
          summary:
            'Revokes the user’s refresh-token chains, consents and unredeemed codes, and ends their sessions; with `client_id`, that client’s only (sessions stay).',
          security,
          parameters: parameters('query', clientQuery),
          responses: {
            '200': ok('What was revoked.', {
              type: 'object',
              required: ['sub', 'revoked'],
              properties: { sub: { type: 'string' }, client_id: { type: 'string' }, revoked: ref('RevokedGrants') },
            }),
            '400': badRequest,
            ...common,
          },
        },
      },
      '/admin/users/{sub}/sessions': {
        parameters: parameters('path', subParams),
        delete: {
          summary: 'Ends every live session of the user (grants stay); the apps they signed in to get logout tokens.',
          security,
          responses: {
            '200': ok('Sessions ended and back-channel logout tokens queued.', {
              type: 'object',
              required: ['sub', 'sessions', 'logout_tokens'],
              properties: { sub: { type: 'string' }, sessions: count, logout_tokens: count },
            }),
            ...common,
          },
        },
      },
      '/admin/audit-events': {
        get: {
          summary:
            'Audit events, newest first, by subject, client, type (or a prefix ending in a dot) and time (docs/audit.md).',
          security,
          parameters: parameters('query', {
            properties: {
              subject: { type: 'string', minLength: 1, maxLength: 1024 },
              client_id: { type: 'string', minLength: 1, maxLength: 2048 },
              type: { type: 'string', minLength: 1, maxLength: 64, description: 'consent.granted, or consent.' },
              since: { type: 'string', description: 'RFC 3339 date-time, a date, or an age such as 24h or 7d' },
              until: { type: 'string', description: 'as since; exclusive' },
              limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: '1 to 500; 50 when absent' },
              cursor: { type: 'string', description: 'next_cursor of the previous page' },
            },
          }),
          responses: {
            '200': ok('One page of events.', {
              type: 'object',
              required: ['events', 'next_cursor'],
              properties: {
                events: { type: 'array', items: ref('AuditEvent') },
                next_cursor: { type: ['string', 'null'] },
              },
            }),
            '400': badRequest,
            ...common,
          },
        },
      },
      '/admin/keys': {
        get: {
          summary: 'The signing keys.',
          security,
          responses: {
            '200': ok('The keys.', {
              type: 'object',
              required: ['keys'],
              properties: { keys: { type: 'array', items: ref('Key') } },
            }),
            ...common,
          },
        },
      },
      '/admin/keys/rotate': {
        post: {
          summary: 'Publishes the next key now; it signs after KEY_ROTATION_DELAY_SECONDS.',
          security,
          responses: {
            '201': ok('The next key.', { type: 'object', required: ['key'], properties: { key: ref('Key') } }),
            '409': error('`conflict`: a next key is already pending, or keys come from SIGNING_KEY_FILES.'),
            ...common,
          },
        },
      },
      '/admin/keys/{kid}/retire': {
        parameters: parameters('path', kidParams),
        post: {
          summary:
            'Withdraws a pending next key or pulls a retired key from the JWKS; the active key only with `{"immediately": true}`.',
          security,
          requestBody: { required: false, content: json(retireBody) },
          responses: {
            '200': ok('The retired key and the key that signs now.', {
              type: 'object',
              required: ['retired', 'signing'],
              properties: { retired: ref('Key'), signing: { oneOf: [{ type: 'null' }, ref('Key')] } },
            }),
            '400': badRequest,
            '404': notFound,
            '409': conflict,
            ...common,
          },
        },
      },
    },
  };
}

/** GET /openapi.json (under /admin, so behind the admin token): the admin API's OpenAPI document. */
export default async function adminOpenApiRoutes(admin: FastifyInstance): Promise<void> {
  admin.get('/openapi.json', async () => adminOpenApiDocument());
}
