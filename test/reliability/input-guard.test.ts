import { randomBytes } from 'node:crypto';
import t from 'tap';
import { buildAdminApp } from '../../src/admin-app.js';
import { DCR_ENV } from '../fixtures/registration.js';
import { buildTestApp } from '../helper.js';

const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const ENV = { ...DCR_ENV, ADMIN_PORT: '4999', ADMIN_TOKEN };
const JSON_BODY = { 'content-type': 'application/json' };

/** The precise refusal: 400 invalid_request as JSON, never a 500 from a query that met the NUL. */
function assertRefused(t: Tap.Test, res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  t.equal(res.statusCode, 400, res.body);
  t.match(res.headers['content-type'], /^application\/json/);
  t.equal(JSON.parse(res.body).error, 'invalid_request', res.body);
}

t.test(
  'NUL or a bad encoding in /register/:client_id is refused before the registration token is looked up',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const withAuth = { authorization: `Bearer ${randomBytes(32).toString('base64url')}` };
    for (const path of [
      '/register/%00',
      '/register/a%00b',
      '/register/%C0%80',
      '/register/%ED%A0%80',
      '/register/%FF',
    ]) {
      for (const method of ['GET', 'PUT', 'DELETE'] as const) {
        for (const [label, headers] of [
          ['with Authorization', withAuth],
          ['without Authorization', {}],
          ['with a non-Bearer Authorization', { authorization: 'Basic Zm9vOmJhcg==' }],
        ] as const) {
          const body = method === 'PUT' ? { payload: '{"redirect_uris":["https://a.example/cb"]}' } : {};
          const res = await app.inject({
            method,
            url: path,
            headers: { ...headers, ...(method === 'PUT' ? JSON_BODY : {}) },
            ...body,
          });
          t.test(`${method} ${path} ${label}`, async (t) => assertRefused(t, res));
        }
      }
    }
  },
);

t.test('NUL in the query of a public route is refused before anything reads it', async (t) => {
  const app = await buildTestApp(t, ENV);
  assertRefused(
    t,
    await app.inject({
      method: 'POST',
      url: '/token?x=%00',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials',
    }),
  );
  assertRefused(
    t,
    await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials&client_id=%00',
    }),
  );
});

t.test('NUL in an admin route is refused before the admin token check and the database', async (t) => {
  const app = await buildTestApp(t, ENV);
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  await admin.ready();
  for (const headers of [{ authorization: `Bearer ${ADMIN_TOKEN}` }, {}]) {
    assertRefused(t, await admin.inject({ method: 'GET', url: '/admin/clients/%00', headers }));
    assertRefused(t, await admin.inject({ method: 'DELETE', url: '/admin/clients/%00', headers }));
    assertRefused(t, await admin.inject({ method: 'GET', url: '/admin/clients/%C0%80', headers }));
  }
});
