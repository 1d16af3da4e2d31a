import t from 'tap';
import { buildTestApp } from './helper.js';

const ORIGIN = 'https://inspector.example';
const preflight = (method: string) => ({
  origin: ORIGIN,
  'access-control-request-method': method,
  'access-control-request-headers': 'authorization, content-type',
});

t.test('CORS: preflight and headers on the endpoints browsers fetch, nowhere else', async (t) => {
  const app = await buildTestApp(t, { DCR_ENABLED: 'true' });
  for (const [url, method] of [
    ['/token', 'POST'],
    ['/revoke', 'POST'],
    ['/register', 'POST'],
    ['/register/some-client', 'PUT'],
    ['/.well-known/jwks.json', 'GET'],
    ['/.well-known/oauth-authorization-server', 'GET'],
  ] as const) {
    const res = await app.inject({ method: 'OPTIONS', url, headers: preflight(method) });
    t.equal(res.statusCode, 204, `${url}: preflight answered`);
    t.equal(res.headers['access-control-allow-origin'], '*', `${url}: any origin`);
    t.match(String(res.headers['access-control-allow-methods']), method, `${url}: ${method} allowed`);
    t.match(String(res.headers['access-control-allow-headers']), /Authorization/, `${url}: Authorization allowed`);
    t.equal(res.headers['access-control-max-age'], '600');
    t.notOk(res.headers['access-control-allow-credentials'], `${url}: never credentials`);
  }
  const token = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials',
  });
  t.equal(token.statusCode, 401);
  t.equal(token.headers['access-control-allow-origin'], '*', 'an error from /token is readable cross-origin too');
  t.match(String(token.headers['access-control-expose-headers']), /WWW-Authenticate/);

  for (const url of ['/authorize', '/consent', '/sign-in/complete', '/sign-out', '/introspect', '/healthz', '/nope']) {
    const res = await app.inject({ method: 'OPTIONS', url, headers: preflight('POST') });
    t.notOk(res.headers['access-control-allow-origin'], `${url}: no preflight`);
    t.not(res.statusCode, 204, `${url}: not answered as a preflight`);
  }
  const page = await app.inject({ method: 'GET', url: '/authorize', headers: { origin: ORIGIN } });
  t.notOk(page.headers['access-control-allow-origin'], '/authorize responses carry no CORS headers');
});

t.test('CORS: no preflight for /register when dynamic registration is off', async (t) => {
  const app = await buildTestApp(t, {});
  const res = await app.inject({ method: 'OPTIONS', url: '/register', headers: preflight('POST') });
  t.notOk(res.headers['access-control-allow-origin']);
  t.equal(res.statusCode, 404);
});
