import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildApp } from '../src/app.js';
import { DomainError } from '../src/lib/errors.js';
import { OAuthError } from '../src/oauth/errors.js';
import { testConfig, testDatabase } from './helper.js';

async function appWithRoutes(t: Tap.Test, extra: (app: FastifyInstance) => void = () => {}) {
  const logs: string[] = [];
  const { Writable } = await import('node:stream');
  const logStream = new Writable({
    write(chunk: Buffer, _e, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const app = await buildApp(testConfig({ LOG_LEVEL: 'error' }), { database: await testDatabase(), logStream });
  app.get('/boom', async () => {
    throw new Error('internal detail: password=hunter2 at db.internal');
  });
  app.get('/oauth-error', async () => {
    throw new OAuthError('invalid_client', 'client authentication failed', {
      headers: { 'www-authenticate': 'Basic realm="gatehouse"' },
    });
  });
  app.post(
    '/echo',
    {
      schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 5 } } } },
    },
    async (req) => req.body,
  );
  app.get(
    '/rendered',
    {
      config: {
        errorRenderer: (err, _req, reply) => reply.code(err.status).type('text/html').send(`<p>${err.error}</p>`),
      },
    },
    async () => {
      throw new OAuthError('access_denied', 'no');
    },
  );
  app.get(
    '/page-boom',
    {
      config: {
        errorRenderer: (err, _req, reply) =>
          reply.code(err.status).type('text/html').send(`<p>${err.error}: ${err.description}</p>`),
      },
    },
    async () => {
      throw new Error('internal detail: password=hunter2');
    },
  );
  extra(app);
  t.teardown(() => app.close());
  await app.ready();
  return { app, logs };
}

t.test('unknown paths are 404 JSON', async (t) => {
  const { app } = await appWithRoutes(t);
  const res = await app.inject({ method: 'GET', url: '/nope' });
  t.equal(res.statusCode, 404);
  t.match(res.headers['content-type'], /^application\/json/);
  t.same(res.json(), { error: 'not_found', error_description: 'no such endpoint' });
});

t.test('a wrong method is 405 JSON with Allow', async (t) => {
  const { app } = await appWithRoutes(t);
  const res = await app.inject({ method: 'DELETE', url: '/healthz' });
  t.equal(res.statusCode, 405);
  t.equal(res.headers.allow, 'GET, HEAD');
  t.same(res.json(), { error: 'method_not_allowed', error_description: 'DELETE is not allowed here' });
});

t.test('an unexpected error is an opaque 500 server_error, logged with its detail', async (t) => {
  const { app, logs } = await appWithRoutes(t);
  const res = await app.inject({ method: 'GET', url: '/boom' });
  t.equal(res.statusCode, 500);
  t.same(res.json(), { error: 'server_error', error_description: 'the server could not complete the request' });
  t.notMatch(res.body, /hunter2|internal detail|stack/);
  t.match(logs.join(''), /internal detail/, 'the detail is in the log for operators');
});

t.test('an unexpected error on a page route is shown by its renderer, still opaque', async (t) => {
  const { app } = await appWithRoutes(t);
  const res = await app.inject({ method: 'GET', url: '/page-boom' });
  t.equal(res.statusCode, 500);
  t.match(res.headers['content-type'], /^text\/html/);
  t.equal(res.body, '<p>server_error: the server could not complete the request</p>');
});

t.test('an OAuthError renders as RFC 6749 §5.2 JSON with its status and headers', async (t) => {
  const { app } = await appWithRoutes(t);
  const res = await app.inject({ method: 'GET', url: '/oauth-error' });
  t.equal(res.statusCode, 401);
  t.equal(res.headers['www-authenticate'], 'Basic realm="gatehouse"');
  t.equal(res.headers['cache-control'], 'no-store');
  t.same(res.json(), { error: 'invalid_client', error_description: 'client authentication failed' });
});

t.test('a route may render its errors its own way', async (t) => {
  const { app } = await appWithRoutes(t);
  const res = await app.inject({ method: 'GET', url: '/rendered' });
  t.equal(res.statusCode, 403);
  t.equal(res.body, '<p>access_denied</p>');
});

t.test('bad bodies get precise 4xx errors, never 500', async (t) => {
  const { app } = await appWithRoutes(t);
  const invalid = await app.inject({ method: 'POST', url: '/echo', payload: { name: 'far too long' } });
  t.equal(invalid.statusCode, 400);
  t.equal(invalid.json().error, 'invalid_request');
  t.match(invalid.json().error_description, /^name must NOT have more than 5 characters$/);

  const malformed = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/json' },
    payload: '{"name":',
  });
  t.equal(malformed.statusCode, 400);
  t.equal(malformed.json().error, 'invalid_request');

  const media = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/xml' },
    payload: '<a/>',
  });
  t.equal(media.statusCode, 415);
  t.equal(media.json().error, 'unsupported_media_type');

  const big = await app.inject({
    method: 'POST',
    url: '/echo',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `name=${'x'.repeat(20000)}`,
  });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error, 'payload_too_large');

  const badUrl = await app.inject({ method: 'GET', url: '/%zz' });
  t.ok(badUrl.statusCode === 400 || badUrl.statusCode === 404, 'a malformed path is a client error');
  t.equal(typeof badUrl.json().error, 'string');
});

t.test('a missing required parameter is named', async (t) => {
  const { app } = await appWithRoutes(t);
  const res = await app.inject({ method: 'POST', url: '/echo', payload: { other: 'x' } });
  t.equal(res.statusCode, 400);
  t.same(res.json(), { error: 'invalid_request', error_description: 'missing parameter: name' });
});

t.test('a DomainError is answered through the one table; its detail is logged, never sent', async (t) => {
  const cases: Array<[string, DomainError, number, string, string]> = [
    ['/d/not-found', new DomainError('not_found', 'no such thing'), 404, 'not_found', 'no such thing'],
    ['/d/conflict', new DomainError('conflict', 'already so'), 409, 'conflict', 'already so'],
    ['/d/input', new DomainError('invalid_input', 'bad input'), 400, 'invalid_request', 'bad input'],
    [
      '/d/redirect',
      new DomainError('invalid_input', 'redirect_uris[0]: must be https', { field: 'redirect_uris[0]' }),
      400,
      'invalid_redirect_uri',
      'redirect_uris[0]: must be https',
    ],
    [
      '/d/metadata',
      new DomainError('invalid_input', 'client_name: too long', { field: 'client_name' }),
      400,
      'invalid_client_metadata',
      'client_name: too long',
    ],
    [
      '/d/unavailable',
      new DomainError('unavailable', 'try later', { detail: 'secret-detail-unavailable' }),
      503,
      'temporarily_unavailable',
      'try later',
    ],
    [
      '/d/misconfigured',
      new DomainError('misconfigured', 'KEY_ENCRYPTION_SECRET is wrong', { detail: 'secret-detail-misconfigured' }),
      500,
      'server_error',
      'the server could not complete the request',
    ],
  ];
  const { app, logs } = await appWithRoutes(t, (app) => {
    for (const [url, error] of cases)
      app.get(url, async () => {
        throw error;
      });
  });
  for (const [url, , status, code, description] of cases) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, status, url);
    t.same(res.json(), { error: code, error_description: description }, url);
    t.notMatch(res.body, /secret-detail|KEY_ENCRYPTION_SECRET/, 'nothing internal is sent');
  }
  t.match(logs.join(''), /secret-detail-misconfigured/, 'a 5xx is logged with its detail');
});
