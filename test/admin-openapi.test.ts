import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildAdminApp } from '../src/admin-app.js';
import { adminOpenApiDocument } from '../src/routes/admin/openapi.js';
import { buildTestApp } from './helper.js';

// ajv-formats is CommonJS whose types name the plugin as a default export Node does not give an ES import.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

type Json = Record<string, unknown>;
interface Operation {
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
  security?: unknown[];
}

async function setup(t: Tap.Test): Promise<FastifyInstance> {
  const app = await buildTestApp(t, {
    ISSUER: 'https://auth.example.com',
    SCOPES: '{"read":"Read your data"}',
    RESOURCES: 'https://api.example.com',
    ADMIN_PORT: '4999',
    ADMIN_TOKEN,
  });
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  await admin.ready();
  return admin;
}

const doc = adminOpenApiDocument() as { paths: Record<string, Record<string, unknown>>; components: Json } & Json;
const components = (doc.components as { schemas: Record<string, Json> }).schemas;

/** The schema with every `#/components/schemas/…` reference replaced by its target (they do not nest in cycles). */
function resolve(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(resolve);
  if (schema === null || typeof schema !== 'object') return schema;
  const ref = (schema as Json).$ref;
  if (typeof ref === 'string') {
    const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
    if (!name || !components[name]) throw new Error(`unresolvable $ref ${ref}`);
    return resolve(components[name]);
  }
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, resolve(v)]));
}

function operations(): Array<{ path: string; method: string; op: Operation; pathParameters: Json[] }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => m in item).map((method) => ({
      path,
      method,
      op: item[method] as Operation,
      pathParameters: (item.parameters as Json[] | undefined) ?? [],
    })),
  );
}

t.test('the document lists exactly the routes the admin listener registers', async (t) => {
  const admin = await setup(t);
  const registered = admin.adminRoutes.map((r) => `${r.method} ${r.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`);
  t.ok(registered.length > 5, 'routes were seen as they were registered');
  // Fastify adds a HEAD route for each GET (exposeHeadRoutes); it is the GET's, not an operation of its own.
  const heads = registered.filter((r) => r.startsWith('HEAD '));
  for (const head of heads) t.ok(registered.includes(head.replace('HEAD', 'GET')), `${head} is a GET's twin`);
  const routes = registered.filter((r) => !r.startsWith('HEAD ')).sort();
  const documented = operations()
    .map((o) => `${o.method.toUpperCase()} ${o.path}`)
    .sort();
  t.same(documented, routes, 'the same methods and paths, both ways');
  for (const route of routes) t.ok(documented.includes(route), `${route} is documented`);
});

t.test('the document is well-formed OpenAPI 3.1 with valid JSON schemas', async (t) => {
  t.equal(doc.openapi, '3.1.0');
  t.match(doc.info, { title: String, version: String });
  t.match(components, { Error: { required: ['error'] } });
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const { path, method, op, pathParameters } of operations()) {
    const name = `${method.toUpperCase()} ${path}`;
    const parameters = [...pathParameters, ...(op.parameters ?? [])];
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    t.same(
      parameters
        .filter((p) => p.in === 'path')
        .map((p) => p.name)
        .sort(),
      templated,
      `${name}: a path parameter for each template`,
    );
    for (const p of parameters) {
      t.ok(['path', 'query'].includes(String(p.in)), `${name} ${String(p.name)}: in path or query`);
      if (p.in === 'path') t.equal(p.required, true, `${name} ${String(p.name)}: path parameters are required`);
      t.doesNotThrow(() => ajv.compile(resolve(p.schema) as Json), `${name} ${String(p.name)}: a valid schema`);
    }
    const body = op.requestBody as { content?: Record<string, { schema: Json }> } | undefined;
    if (body) t.doesNotThrow(() => ajv.compile(resolve(body.content!['application/json']!.schema) as Json));
    t.ok(Object.keys(op.responses).length > 0, `${name}: responses`);
    for (const [status, response] of Object.entries(op.responses)) {
      t.match(status, /^[1-5]\d\d$/, `${name}: ${status} is a status code`);
      t.type((response as Json).description, 'string', `${name} ${status}: a description`);
      for (const media of Object.values(response.content ?? {}))
        t.doesNotThrow(() => ajv.compile(resolve(media.schema) as Json), `${name} ${status}: a valid schema`);
    }
    if (path.startsWith('/admin/')) {
      t.same(op.security, [{ adminToken: [] }], `${name}: needs the admin token`);
      t.ok(op.responses['401'], `${name}: documents the 401`);
    } else t.notOk(op.security, `${name}: needs no token`);
  }
});

t.test('served at /admin/openapi.json behind the admin token', async (t) => {
  const admin = await setup(t);
  const refused = await admin.inject({ method: 'GET', url: '/admin/openapi.json' });
  t.equal(refused.statusCode, 401);
  const res = await admin.inject({ method: 'GET', url: '/admin/openapi.json', headers: AUTH });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  t.equal(res.headers['cache-control'], 'no-store');
  t.same(res.json(), JSON.parse(JSON.stringify(doc)), 'the document');
});

t.test('real answers match the documented response schemas', async (t) => {
  const admin = await setup(t);
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const call = async (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    template: string,
    status: number,
    payload?: Json,
  ) => {
    const res = await admin.inject({ method, url, headers: AUTH, ...(payload ? { payload } : {}) });
    t.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
    const op = doc.paths[template]?.[method.toLowerCase()] as Operation | undefined;
    const response = op?.responses[String(status)];
    t.ok(response, `${method} ${template} documents ${status}`);
    const schema = response?.content?.['application/json']?.schema;
    if (schema) {
      const validate = ajv.compile(resolve(schema) as Json);
      t.ok(validate(res.json()), `${method} ${url} ${status} matches: ${JSON.stringify(validate.errors)}`);
    } else t.equal(res.body, '', `${method} ${url} ${status}: no body, as documented`);
    return res;
  };

  await call('GET', '/healthz', '/healthz', 200);
  const created = await call('POST', '/admin/clients', '/admin/clients', 201, {
    client_id: 'svc',
    name: 'Service',
    grant_types: ['client_credentials'],
    scopes: ['read'],
  });
  t.type(created.json().client_secret, 'string');
  await call('POST', '/admin/clients', '/admin/clients', 400, { name: 'Bad', scopes: ['nope'] });
  await call('GET', '/admin/clients', '/admin/clients', 200);
  await call('GET', '/admin/clients/svc', '/admin/clients/{client_id}', 200);
  await call('GET', '/admin/clients/nobody', '/admin/clients/{client_id}', 404);
  await call('PATCH', '/admin/clients/svc', '/admin/clients/{client_id}', 200, { disabled: true });
  await call('POST', '/admin/clients/svc/rotate-secret', '/admin/clients/{client_id}/rotate-secret', 200);
  await call('GET', '/admin/users/alice/grants', '/admin/users/{sub}/grants', 200);
  await call('DELETE', '/admin/users/alice/grants?client_id=svc', '/admin/users/{sub}/grants', 200);
  await call('DELETE', '/admin/users/alice/grants', '/admin/users/{sub}/grants', 200);
  await call('DELETE', '/admin/users/alice/sessions', '/admin/users/{sub}/sessions', 200);
  await call('GET', '/admin/keys', '/admin/keys', 200);
  const next = await call('POST', '/admin/keys/rotate', '/admin/keys/rotate', 201);
  await call('POST', '/admin/keys/rotate', '/admin/keys/rotate', 409);
  await call('POST', `/admin/keys/${next.json().key.kid}/retire`, '/admin/keys/{kid}/retire', 200);
  await call('POST', '/admin/keys/unknown-kid/retire', '/admin/keys/{kid}/retire', 404);
  await call('DELETE', '/admin/clients/svc', '/admin/clients/{client_id}', 204);
  await admin.gatehouse.audit.flush();
  const events = await call('GET', '/admin/audit-events?client_id=svc&limit=5', '/admin/audit-events', 200);
  t.ok(events.json().events.length > 0, 'the changes above are in the audit trail');
  await call('GET', '/admin/audit-events?limit=0', '/admin/audit-events', 400);

  const unauthorized = await admin.inject({ method: 'GET', url: '/admin/keys' });
  t.equal(unauthorized.statusCode, 401);
  const errorSchema = ajv.compile(resolve(components.Error) as Json);
  t.ok(errorSchema(unauthorized.json()), 'a 401 is the documented error shape');
});
