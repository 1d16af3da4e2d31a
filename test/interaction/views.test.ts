import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { OAuthError } from '../../src/oauth/errors.js';
import errorHandler from '../../src/plugins/app/error-handler.js';
import viewPlugin, { formActionSource, sendPage, viewsDirectory } from '../../src/plugins/external/view.js';
import { asSentence, htmlErrorRenderer } from '../../src/routes/interaction/error-page.js';
import { buildTestApp, testConfig, testDatabase } from '../helper.js';
import { assertPageHeaders, assertPageMarkup } from '../fixtures/pages.js';
import { ISSUER } from '../kit/issuer.js';

const ENV = { ISSUER: 'https://auth.example.com' };
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

t.test('viewsDirectory finds the repository views/ from src/ and from dist/', async (t) => {
  t.equal(viewsDirectory(join(REPO, 'src', 'plugins', 'external')), join(REPO, 'views'));
  t.equal(
    viewsDirectory(join(REPO, 'dist', 'src', 'plugins', 'external')),
    join(REPO, 'views'),
    'tsc output does not contain views/',
  );
  t.equal(viewsDirectory(), join(REPO, 'views'), 'from the module itself');
  t.throws(() => viewsDirectory('/'), /no views\/ directory/);
});

t.test('GET /assets/gatehouse.css serves the stylesheet with a long cache and revalidation', async (t) => {
  const app = await buildTestApp(t, ENV);
  const res = await app.inject({ method: 'GET', url: '/assets/gatehouse.css' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'text/css; charset=utf-8');
  t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
  t.match(res.body, /prefers-color-scheme: dark/);
  t.match(res.body, /:focus-visible/);
  const etag = res.headers.etag as string;
  t.match(etag, /^"[A-Za-z0-9_-]{22}"$/);
  const again = await app.inject({
    method: 'GET',
    url: '/assets/gatehouse.css?v=whatever',
    headers: { 'if-none-match': etag },
  });
  t.equal(again.statusCode, 304);
  t.equal(again.body, '');
  t.equal(app.pageContext.stylesheet, `/assets/gatehouse.css?v=${etag.slice(1, 13)}`, 'pages link the hashed URL');
  t.equal(app.pageContext.serverName, 'auth.example.com');
});

t.test('pages link the stylesheet under the issuer path', async (t) => {
  const app = await buildTestApp(t, { ISSUER: 'https://example.com/auth' });
  t.equal(app.pageContext.basePath, '/auth');
  t.match(app.pageContext.stylesheet, /^\/auth\/assets\/gatehouse\.css\?v=/);
  const res = await app.inject({ method: 'GET', url: '/consent?request=unknown' });
  t.match(res.body, /<link rel="stylesheet" href="\/auth\/assets\/gatehouse\.css\?v=[A-Za-z0-9_-]+">/);
});

t.test('JSON endpoints do not get the page headers', async (t) => {
  const app = await buildTestApp(t, ENV);
  for (const url of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/no-such-endpoint']) {
    const res = await app.inject({ method: 'GET', url });
    t.match(res.headers['content-type'], /^application\/json/, url);
    t.notOk(res.headers['content-security-policy'], `${url}: no CSP`);
    t.notOk(res.headers['x-frame-options'], `${url}: no X-Frame-Options`);
  }
});

t.test('the error page escapes the description and carries every page header', async (t) => {
  const app = await buildApp(testConfig(ENV), { database: await testDatabase() });
  t.teardown(() => app.close());
  app.get('/boom', { config: { errorRenderer: htmlErrorRenderer } }, async () => {
    throw new OAuthError('invalid_request', '<script>alert(1)</script> & "quotes"', { headers: { 'x-extra': 'kept' } });
  });
  app.get('/refused', { config: { errorRenderer: htmlErrorRenderer } }, async () => {
    throw new OAuthError('invalid_request', 'nope', { status: 403 });
  });
  app.get('/crash', { config: { errorRenderer: htmlErrorRenderer } }, async () => {
    throw new Error('secret internals');
  });
  await app.ready();

  const res = await app.inject({ method: 'GET', url: '/boom', headers: { 'x-request-id': 'req-123' } });
  t.equal(res.statusCode, 400);
  assertPageHeaders(t, res.headers, 'error page');
  assertPageMarkup(t, res.body, 'error page');
  t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', 'HSTS on an https issuer');
  t.equal(res.headers['x-extra'], 'kept', 'the error’s own headers are sent');
  t.notMatch(res.body, /<script>alert/);
  t.match(res.body, /<p class="lead">&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; &quot;quotes&quot;\.<\/p>/);
  t.match(res.body, /<h1>This request cannot be completed<\/h1>/);
  t.match(res.body, /<code>invalid_request<\/code> \(HTTP 400\)/);
  t.match(res.body, /<code>req-123<\/code>/, 'the request id, for support');
  t.match(res.body, /<title>This request cannot be completed · auth\.example\.com<\/title>/);

  const refused = await app.inject({ method: 'GET', url: '/refused' });
  t.equal(refused.statusCode, 403);
  t.match(refused.body, /<h1>This request was refused<\/h1>/);

  const crash = await app.inject({ method: 'GET', url: '/crash' });
  t.equal(crash.statusCode, 500);
  t.match(crash.headers['content-type'], /^text\/html/, 'a browser gets a page even for an unexpected error');
  assertPageHeaders(t, crash.headers, 'server error page');
  t.match(crash.body, /<h1>Something went wrong on our side<\/h1>/);
  t.notMatch(crash.body, /secret internals/, 'and nothing internal');
});

t.test('an http issuer gets no HSTS', async (t) => {
  const app = await buildTestApp(t, { ISSUER });
  const res = await app.inject({ method: 'GET', url: '/consent?request=unknown' });
  t.equal(res.statusCode, 400);
  assertPageHeaders(t, res.headers, 'http error page');
  t.notOk(res.headers['strict-transport-security']);
});

t.test('the signed-out page renders, with an optional escaped continue link', async (t) => {
  const app = await buildTestApp(t, ENV);
  const plain = await app.view('signed-out', {});
  assertPageMarkup(t, plain, 'signed-out');
  t.match(plain, /<h1>You are signed out<\/h1>/);
  t.match(plain, /You can close this window/);
  t.notMatch(plain, /href="[^"]*"[^>]*>Continue/);
  const linked = await app.view('signed-out', { continueUrl: 'https://app.example.com/?a=1&b="x"' });
  t.match(
    linked,
    /<a class="button button-primary" href="https:\/\/app\.example\.com\/\?a=1&amp;b=&quot;x&quot;">Continue<\/a>/,
  );
});

t.test(
  'formActionSource: the redirect origin, or only its scheme when the origin is not a plain host-source',
  async (t) => {
    t.equal(formActionSource('https://app.example.com/cb?x=1'), 'https://app.example.com');
    t.equal(formActionSource('https://app.example.com:8443/cb'), 'https://app.example.com:8443');
    t.equal(formActionSource('http://127.0.0.1:53682/cb'), 'http://127.0.0.1:53682');
    t.equal(formActionSource('https://BÜCHER.example/cb'), 'https://xn--bcher-kva.example', 'IDN as punycode');
    t.equal(formActionSource('http://[::1]:8080/cb'), 'http:', 'CSP host-source has no IPv6 literals');
    t.equal(
      formActionSource("https://a;script-src'x,y.example/cb"),
      'https:',
      'characters that would end a directive never reach the header',
    );
    t.equal(formActionSource('com.example.app:/cb'), 'com.example.app:');
  },
);

t.test('a page for a request stopped before @fastify/helmet ran still gets the page headers', async (t) => {
  const config = testConfig({ ...ENV, ISSUER: 'https://auth.example.com' });
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(errorHandler);
  // Stands in for a rate limit registered before the view plugin: it answers in onRequest.
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/early')) throw new OAuthError('too_many_requests', 'slow down');
  });
  app.decorate('config', config);
  await app.register(viewPlugin);
  app.get('/early', { config: { errorRenderer: htmlErrorRenderer } }, async () => 'unreached');
  app.get('/form', async (_request, reply) =>
    sendPage(reply, 'signed-out', {}, 200, { formRedirects: ['https://app.example.com/cb'] }),
  );
  await app.ready();
  const res = await app.inject({ method: 'GET', url: '/early' });
  t.equal(res.statusCode, 429);
  assertPageHeaders(t, res.headers, 'early error page');
  t.match(res.body, /<h1>Too many attempts<\/h1>/);
  const form = await app.inject({ method: 'GET', url: '/form' });
  assertPageHeaders(t, form.headers, 'page with a form redirect', "'self' https://app.example.com");
});

t.test('error descriptions read as sentences on the page', async (t) => {
  t.equal(asSentence('the user denied the request'), 'The user denied the request.');
  t.equal(asSentence('Already a sentence!'), 'Already a sentence!');
  t.equal(asSentence('  '), '');
});
