import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildAdminApp, isAdminAuthorization } from '../src/admin-app.js';
import { buildApp } from '../src/app.js';
import type { Clock } from '../src/lib/clock.js';
import { generateToken, hashSecret } from '../src/oauth/secrets.js';
import { createAuthorizationCode } from '../src/repositories/authorization-code.repository.js';
import { saveConsent } from '../src/repositories/consent.repository.js';
import { rotateRefreshToken } from '../src/repositories/refresh-token.repository.js';
import { insertSession } from '../src/repositories/session.repository.js';
import { basic } from './fixtures/clients.js';
import { freePort } from './fixtures/listen.js';
import { openDatabase } from '../src/db/connect.js';
import { buildTestApp, TEST_DATABASE_URL, testConfig, testDatabase, testEnv } from './helper.js';
import { CLI, finished, run, waitForLine } from './process.js';
import { migratedPgliteDataDir } from './kit/database.js';
import { challengeOf } from './kit/pkce.js';

const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const REDIRECT = 'https://app.example.com/cb';
const ENV = {
  ISSUER: 'https://auth.example.com',
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: 'https://api.example.com',
  ADMIN_PORT: '4999',
  ADMIN_TOKEN,
};
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function setup(t: Tap.Test, clock?: Clock): Promise<{ app: FastifyInstance; admin: FastifyInstance }> {
  let app: FastifyInstance;
  if (clock) {
    // buildTestApp, with the app's clock in the test's hands.
    app = await buildApp(testConfig(ENV), { database: await testDatabase(), clock });
    t.teardown(() => app.close());
    await app.ready();
  } else app = await buildTestApp(t, ENV);
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  await admin.ready();
  return { app, admin };
}

function clientCredentials(app: FastifyInstance, id: string, secret: string) {
  return app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(id, secret) },
    payload: 'grant_type=client_credentials',
  });
}

t.test('the admin token is required, exactly, as a Bearer credential', async (t) => {
  const { admin } = await setup(t);
  for (const [label, headers] of [
    ['no header', {}],
    ['a wrong token', { authorization: `Bearer ${randomBytes(32).toString('base64url')}` }],
    ['the token as Basic', { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }],
    ['the token with a suffix', { authorization: `Bearer ${ADMIN_TOKEN}x` }],
    ['an empty Bearer', { authorization: 'Bearer ' }],
  ] as const) {
    const res = await admin.inject({ method: 'GET', url: '/admin/clients', headers });
    t.equal(res.statusCode, 401, label);
    t.equal(res.json().error, 'invalid_token', label);
    t.equal(res.headers['www-authenticate'], 'Bearer realm="gatehouse-admin"');
  }
  const inQuery = await admin.inject({ method: 'GET', url: `/admin/clients?access_token=${ADMIN_TOKEN}` });
  t.equal(inQuery.statusCode, 401, 'never from the query string');
  const ok = await admin.inject({ method: 'GET', url: '/admin/clients', headers: AUTH });
  t.equal(ok.statusCode, 200);
  t.equal(ok.headers['cache-control'], 'no-store');
  const health = await admin.inject({ method: 'GET', url: '/healthz' });
  t.same(health.json(), { status: 'ok' }, '/healthz needs no token');
  const unknown = await admin.inject({ method: 'GET', url: '/admin/nothing', headers: AUTH });
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.json().error, 'not_found');
  const outside = await admin.inject({ method: 'GET', url: '/nothing' });
  t.equal(outside.statusCode, 404, 'unknown paths outside /admin are plain 404s');
});

t.test('isAdminAuthorization never accepts an empty configured token', async (t) => {
  t.notOk(isAdminAuthorization('Bearer ', ''));
  t.notOk(isAdminAuthorization(undefined, ''));
  t.ok(isAdminAuthorization(`Bearer ${ADMIN_TOKEN}`, ADMIN_TOKEN));
  t.ok(isAdminAuthorization(`bearer ${ADMIN_TOKEN}`, ADMIN_TOKEN), 'the scheme is case-insensitive (RFC 9110 §11.1)');
  t.notOk(isAdminAuthorization(`Bearer ${ADMIN_TOKEN.toLowerCase()}`, ADMIN_TOKEN), 'the token is not');
  t.notOk(isAdminAuthorization(`Bearer ${ADMIN_TOKEN} extra`, ADMIN_TOKEN));
});

t.test('clients: create, show, list, update, disable, rotate the secret, delete', async (t) => {
  const { app, admin } = await setup(t);
  const created = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: { name: 'Billing', grant_types: ['client_credentials'], scopes: ['read'] },
  });
  t.equal(created.statusCode, 201, created.body);
  const { client, client_secret: secret } = created.json();
  t.match(client, { name: 'Billing', token_endpoint_auth_method: 'client_secret_basic', source: 'admin' });
  t.notOk('secret_hash' in client, 'the stored hash is never shown');
  t.type(secret, 'string', 'the secret, once');
  t.equal((await clientCredentials(app, client.client_id, secret)).statusCode, 200, 'the secret works at /token');

  const shown = await admin.inject({ method: 'GET', url: `/admin/clients/${client.client_id}`, headers: AUTH });
  t.equal(shown.json().client.client_id, client.client_id);
  t.notOk('client_secret' in shown.json(), 'showing a client shows no secret');
  const listed = await admin.inject({ method: 'GET', url: '/admin/clients', headers: AUTH });
  t.ok(listed.json().clients.some((c: { client_id: string }) => c.client_id === client.client_id));

  const publicClient = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: { client_id: 'notes-spa', name: 'Notes', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
  });
  t.equal(publicClient.statusCode, 201, publicClient.body);
  t.equal(publicClient.json().client.client_id, 'notes-spa', 'an operator may choose the client_id');
  t.notOk('client_secret' in publicClient.json(), 'a public client gets no secret');
  const again = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: { client_id: 'notes-spa', name: 'Notes', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
  });
  t.equal(again.statusCode, 409);
  t.equal(again.json().error, 'conflict');

  const badRedirect = await admin.inject({
    method: 'PATCH',
    url: '/admin/clients/notes-spa',
    headers: AUTH,
    payload: { redirect_uris: ['https://app.example.com/cb#frag'] },
  });
  t.equal(badRedirect.statusCode, 400);
  t.equal(badRedirect.json().error, 'invalid_redirect_uri');
  t.match(badRedirect.json().error_description, /^redirect_uris/);
  const badField = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: { name: 'X', grant_types: ['password'] },
  });
  t.equal(badField.statusCode, 400);
  t.equal(badField.json().error, 'invalid_client_metadata');
  t.match(badField.json().error_description, /grant_types/);

  const renamed = await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${client.client_id}`,
    headers: AUTH,
    payload: { name: 'Billing v2' },
  });
  t.equal(renamed.statusCode, 200, renamed.body);
  t.equal(renamed.json().client.name, 'Billing v2');
  const nothing = await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${client.client_id}`,
    headers: AUTH,
    payload: {},
  });
  t.equal(nothing.json().error, 'invalid_request');
  const idChange = await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${client.client_id}`,
    headers: AUTH,
    payload: { client_id: 'other' },
  });
  t.equal(idChange.json().error, 'invalid_client_metadata');

  const disabled = await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${client.client_id}`,
    headers: AUTH,
    payload: { disabled: true },
  });
  t.type(disabled.json().client.disabled_at, 'string');
  app.clients.invalidate(client.client_id);
  t.equal(
    (await clientCredentials(app, client.client_id, secret)).statusCode,
    401,
    'a disabled client cannot authenticate',
  );
  await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${client.client_id}`,
    headers: AUTH,
    payload: { disabled: false },
  });
  t.equal((await clientCredentials(app, client.client_id, secret)).statusCode, 200, 'enabled again');
  const notBoolean = await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${client.client_id}`,
    headers: AUTH,
    payload: { disabled: 'yes' },
  });
  t.equal(notBoolean.statusCode, 400);

  const rotated = await admin.inject({
    method: 'POST',
    url: `/admin/clients/${client.client_id}/rotate-secret`,
    headers: AUTH,
  });
  t.equal(rotated.statusCode, 200);
  const newSecret = rotated.json().client_secret;
  t.not(newSecret, secret);
  t.equal((await clientCredentials(app, client.client_id, secret)).statusCode, 401, 'the old secret stops working');
  t.equal((await clientCredentials(app, client.client_id, newSecret)).statusCode, 200, 'the new one works');
  const publicRotate = await admin.inject({
    method: 'POST',
    url: '/admin/clients/notes-spa/rotate-secret',
    headers: AUTH,
  });
  t.equal(publicRotate.statusCode, 409, 'a public client has no secret to rotate');

  const deleted = await admin.inject({ method: 'DELETE', url: `/admin/clients/${client.client_id}`, headers: AUTH });
  t.equal(deleted.statusCode, 204);
  const gone = await admin.inject({ method: 'GET', url: `/admin/clients/${client.client_id}`, headers: AUTH });
  t.equal(gone.statusCode, 404);
  t.equal(gone.json().error, 'not_found');
  t.equal(
    (await admin.inject({ method: 'DELETE', url: `/admin/clients/${client.client_id}`, headers: AUTH })).statusCode,
    404,
  );
  t.equal(
    (await admin.inject({ method: 'POST', url: '/admin/clients/nope/rotate-secret', headers: AUTH })).statusCode,
    404,
  );
  t.equal(
    (await admin.inject({ method: 'PATCH', url: '/admin/clients/nope', headers: AUTH, payload: { name: 'x' } }))
      .statusCode,
    404,
  );
});

t.test('bad requests to the admin API get precise errors, never a 500', async (t) => {
  const { admin } = await setup(t);
  const asArray = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { ...AUTH, 'content-type': 'application/json' },
    payload: '[1,2]',
  });
  t.equal(asArray.statusCode, 400);
  t.equal(asArray.json().error, 'invalid_request');
  const malformed = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { ...AUTH, 'content-type': 'application/json' },
    payload: '{"name":',
  });
  t.equal(malformed.statusCode, 400);
  const asForm = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { ...AUTH, ...FORM },
    payload: 'name=x',
  });
  t.equal(asForm.statusCode, 415);
  const wrongMethod = await admin.inject({ method: 'PUT', url: '/admin/clients', headers: AUTH, payload: {} });
  t.equal(wrongMethod.statusCode, 405);
  const huge = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { ...AUTH, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'x'.repeat(200_000) }),
  });
  t.equal(huge.statusCode, 413);
  const idType = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: { client_id: 42, name: 'x', grant_types: ['client_credentials'] },
  });
  t.equal(idType.statusCode, 400);
  const retireBody = await admin.inject({
    method: 'POST',
    url: '/admin/keys/abc/retire',
    headers: AUTH,
    payload: { immediately: 'soon' },
  });
  t.equal(retireBody.statusCode, 400);
  const query = await admin.inject({
    method: 'DELETE',
    url: '/admin/users/u/grants?client_id=a&client_id=b',
    headers: AUTH,
  });
  t.equal(query.statusCode, 400, 'a duplicated client_id is refused');
  for (const url of ['/admin/users/a%00b/grants', '/admin/clients/a%00', '/admin/users/u/grants?client_id=a%00']) {
    const res = await admin.inject({ method: url.includes('?') ? 'DELETE' : 'GET', url, headers: AUTH });
    t.equal(res.statusCode, 400, `${url}: NUL refused`);
    t.equal(res.json().error, 'invalid_request');
  }
  const badEncoding = await admin.inject({ method: 'GET', url: '/admin/clients/%E0%A4%A', headers: AUTH });
  t.equal(badEncoding.statusCode, 400);
  t.equal(badEncoding.json().error, 'invalid_request', 'malformed percent-encoding: the usual JSON error');
  const badId = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: { client_id: 'tab\there', name: 'x', grant_types: ['client_credentials'] },
  });
  t.equal(badId.statusCode, 400);
  t.equal(badId.json().error, 'invalid_client_metadata', 'a malformed client_id is bad metadata');
});

t.test("a user's grants: listed per client, revoked for one client or for all", async (t) => {
  const { app, admin } = await setup(t);
  const db = app.database.db;
  const sub = `user-${randomBytes(4).toString('hex')}`;
  const web = await app.clientAdmin.create({
    name: 'Web',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read', 'write'],
  });
  const other = await app.clientAdmin.create({
    name: 'Other',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
  });

  async function chain(client: { client_id: string }, secret: string): Promise<string> {
    const verifier = randomBytes(32).toString('base64url');
    const code = generateToken();
    await createAuthorizationCode(db, {
      code_hash: hashSecret(code),
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      redirect_uri_given: true,
      code_challenge: challengeOf(verifier),
      scopes: ['read'],
      resources: ['https://api.example.com'],
      sub,
      auth_time: new Date(),
      expires_at: new Date(Date.now() + 60_000),
      consumed_at: null,
      family_id: null,
    });
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...FORM, authorization: basic(client.client_id, secret) },
      payload: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
      }).toString(),
    });
    if (res.statusCode !== 200) throw new Error(res.body);
    return res.json().refresh_token;
  }
  const refresh = (client: { client_id: string }, secret: string, token: string) =>
    app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...FORM, authorization: basic(client.client_id, secret) },
      payload: `grant_type=refresh_token&refresh_token=${token}`,
    });

  const webToken = await chain(web.client, web.secret!);
  const otherToken = await chain(other.client, other.secret!);
  await saveConsent(db, sub, web.client.client_id, ['read'], ['https://api.example.com']);
  await saveConsent(db, sub, other.client.client_id, ['read'], ['https://api.example.com']);
  const sessionHash = hashSecret(generateToken());
  await insertSession(db, {
    id_hash: sessionHash,
    sub,
    auth_time: new Date(),
    expires_at: new Date(Date.now() + 3_600_000),
  });
  const unredeemed = generateToken();
  await createAuthorizationCode(db, {
    code_hash: hashSecret(unredeemed),
    client_id: web.client.client_id,
    redirect_uri: REDIRECT,
    redirect_uri_given: true,
    code_challenge: 'x'.repeat(43),
    scopes: ['read'],
    resources: ['https://api.example.com'],
    sub,
    auth_time: new Date(),
    expires_at: new Date(Date.now() + 60_000),
    consumed_at: null,
    family_id: null,
  });

  const listed = await admin.inject({
    method: 'GET',
    url: `/admin/users/${encodeURIComponent(sub)}/grants`,
    headers: AUTH,
  });
  t.equal(listed.statusCode, 200);
  const grants = listed.json().grants;
  t.same(
    grants.map((g: { client_id: string }) => g.client_id).sort(),
    [web.client.client_id, other.client.client_id].sort(),
  );
  const webGrant = grants.find((g: { client_id: string }) => g.client_id === web.client.client_id);
  t.same(webGrant.consent.scopes, ['read']);
  t.equal(webGrant.refresh_chains.length, 1, 'one live chain');

  const one = await admin.inject({
    method: 'DELETE',
    url: `/admin/users/${sub}/grants?client_id=${encodeURIComponent(other.client.client_id)}`,
    headers: AUTH,
  });
  t.equal(one.statusCode, 200);
  t.match(one.json(), {
    sub,
    client_id: other.client.client_id,
    revoked: { refresh_tokens: 1, consents: 1, authorization_codes: 0, sessions: 0 },
  });
  t.equal(
    (await refresh(other.client, other.secret!, otherToken)).json().error,
    'invalid_grant',
    "that client's chain is revoked",
  );
  const stillWeb = await refresh(web.client, web.secret!, webToken);
  t.equal(stillWeb.statusCode, 200, "the user's other clients keep their grants");

  const all = await admin.inject({ method: 'DELETE', url: `/admin/users/${sub}/grants`, headers: AUTH });
  t.equal(all.statusCode, 200);
  t.match(
    all.json().revoked,
    { refresh_tokens: 2, consents: 1, authorization_codes: 1, sessions: 1 },
    'both generations of the rotated chain, the consent, the pending code, the session',
  );
  t.equal((await refresh(web.client, web.secret!, stillWeb.json().refresh_token)).json().error, 'invalid_grant');
  const session = await db
    .selectFrom('sessions')
    .select('revoked_at')
    .where('id_hash', '=', sessionHash)
    .executeTakeFirstOrThrow();
  t.ok(session.revoked_at, 'the Gatehouse session ended: the next /authorize goes back to the host');
  const empty = await admin.inject({ method: 'GET', url: `/admin/users/${sub}/grants`, headers: AUTH });
  t.same(empty.json().grants, [], 'nothing left');
  const nobody = await admin.inject({ method: 'DELETE', url: '/admin/users/nobody/grants', headers: AUTH });
  t.same(
    nobody.json().revoked,
    { refresh_tokens: 0, consents: 0, authorization_codes: 0, sessions: 0 },
    'an unknown user is not an error',
  );
});

t.test('revoking a user while its client keeps refreshing leaves no live token', async (t) => {
  const { app, admin } = await setup(t);
  const db = app.database.db;
  const sub = 'racing-user';
  const { client, secret } = await app.clientAdmin.create({
    name: 'Racer',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
  });
  const tokens: string[] = [];
  for (let i = 0; i < 4; i++) {
    const verifier = randomBytes(32).toString('base64url');
    const code = generateToken();
    await createAuthorizationCode(db, {
      code_hash: hashSecret(code),
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      redirect_uri_given: true,
      code_challenge: challengeOf(verifier),
      scopes: ['read'],
      resources: ['https://api.example.com'],
      sub,
      auth_time: new Date(),
      expires_at: new Date(Date.now() + 60_000),
      consumed_at: null,
      family_id: null,
    });
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...FORM, authorization: basic(client.client_id, secret!) },
      payload: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
      }).toString(),
    });
    tokens.push(res.json().refresh_token);
  }
  // Four chains, each refreshed as fast as the client can, while the admin revokes the user.
  let stop = false;
  const refresher = async (start: string): Promise<number> => {
    let token = start;
    let rotations = 0;
    while (!stop) {
      const res = await app.inject({
        method: 'POST',
        url: '/token',
        headers: { ...FORM, authorization: basic(client.client_id, secret!) },
        payload: `grant_type=refresh_token&refresh_token=${token}`,
      });
      if (res.statusCode !== 200) break;
      token = res.json().refresh_token;
      rotations++;
    }
    return rotations;
  };
  const running = tokens.map(refresher);
  await new Promise((r) => setTimeout(r, 150));
  const revoked = await admin.inject({ method: 'DELETE', url: `/admin/users/${sub}/grants`, headers: AUTH });
  t.equal(revoked.statusCode, 200);
  const rotations = await Promise.race([
    Promise.all(running),
    new Promise<number[]>((r) => setTimeout(() => r([]), 10_000)),
  ]);
  stop = true;
  t.equal(rotations.length, 4, 'every refresher ran into the revocation by itself');
  t.ok(
    rotations.reduce((a, b) => a + b, 0) > 0,
    `the chains were rotating when the revocation came (${rotations.join(', ')})`,
  );
  const live = await db
    .selectFrom('refresh_tokens')
    .select('token_hash')
    .where('sub', '=', sub)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .execute();
  t.same(live, [], 'no chain survived');
});

t.test('signing keys: list, rotate, retire', async (t) => {
  const { app, admin } = await setup(t);
  const listed = await admin.inject({ method: 'GET', url: '/admin/keys', headers: AUTH });
  const active = listed.json().keys.find((k: { state: string }) => k.state === 'active');
  t.ok(active, 'the active key is listed');
  const rotated = await admin.inject({ method: 'POST', url: '/admin/keys/rotate', headers: AUTH });
  t.equal(rotated.statusCode, 201, rotated.body);
  const next = rotated.json().key;
  t.equal(next.state, 'next');
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  t.ok(
    jwks.keys.some((k: { kid: string }) => k.kid === next.kid),
    'the next key is published at once',
  );
  const twice = await admin.inject({ method: 'POST', url: '/admin/keys/rotate', headers: AUTH });
  t.equal(twice.statusCode, 409, 'one pending rotation at a time');
  t.equal(twice.json().error, 'conflict');
  const unknown = await admin.inject({ method: 'POST', url: '/admin/keys/nope/retire', headers: AUTH });
  t.equal(unknown.statusCode, 404);
  const retired = await admin.inject({
    method: 'POST',
    url: `/admin/keys/${next.kid}/retire`,
    headers: AUTH,
    payload: { immediately: true },
  });
  t.equal(retired.statusCode, 200, retired.body);
  const after = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  t.notOk(
    after.keys.some((k: { kid: string }) => k.kid === next.kid),
    'retired immediately: gone from the JWKS',
  );
});

t.test('gatehouse serve opens the admin listener on ADMIN_PORT and closes it on SIGTERM', async (t) => {
  const port = await freePort();
  const adminPort = await freePort();
  const env = {
    ...testEnv({
      DATA_DIR: await migratedPgliteDataDir(join(t.testdir(), 'pglite')),
      LOG_LEVEL: 'info',
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      ADMIN_TOKEN,
    }),
  };
  delete (env as Record<string, string>).DATABASE_URL;
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = finished(child, 60_000);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitForLine(child, /admin listener ready/);
  const clients = await fetch(`http://127.0.0.1:${adminPort}/admin/clients`, { headers: AUTH });
  t.equal(clients.status, 200);
  t.same(await clients.json(), { clients: [] });
  const refused = await fetch(`http://127.0.0.1:${adminPort}/admin/clients`);
  t.equal(refused.status, 401);
  const publicSide = await fetch(`http://127.0.0.1:${port}/admin/clients`, { headers: AUTH });
  t.equal(publicSide.status, 404, 'the admin API is not on the public listener');
  child.kill('SIGTERM');
  const out = await done;
  t.equal(out.code, 0, out.stderr);
  await t.rejects(fetch(`http://127.0.0.1:${adminPort}/healthz`), 'the admin listener closed too');
  t.notMatch(out.stdout, ADMIN_TOKEN, 'the admin token is never logged');
});

t.test(
  '/metrics on the admin listener: requests by route template, token answers by grant type, process metrics',
  async (t) => {
    const { app, admin } = await setup(t);
    const { client, secret } = await app.clientAdmin.create({
      name: 'Metered',
      grant_types: ['client_credentials'],
      scopes: ['read'],
    });
    t.equal((await clientCredentials(app, client.client_id, secret!)).statusCode, 200);
    t.equal((await clientCredentials(app, client.client_id, secret!)).statusCode, 200);
    t.equal((await clientCredentials(app, client.client_id, 'wrong-secret')).statusCode, 401);
    await app.inject({
      method: 'POST',
      url: '/token',
      headers: FORM,
      payload: 'grant_type=password&username=a&password=b',
    });
    await app.inject({ method: 'GET', url: `/no/such/path?code=${secret}` });

    const res = await admin.inject({ method: 'GET', url: '/metrics' });
    t.equal(res.statusCode, 200, 'Prometheus scrapes without the admin token');
    t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const text = res.body;
    t.match(text, /gatehouse_http_requests_total\{route="\/token",method="POST",status="200"\} 2/);
    t.match(text, /gatehouse_http_requests_total\{route="\/token",method="POST",status="401"\} 1/);
    t.match(
      text,
      /gatehouse_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/,
      'unknown paths share one label',
    );
    t.match(text, /gatehouse_token_responses_total\{grant_type="client_credentials",outcome="issued"\} 2/);
    t.match(text, /gatehouse_token_responses_total\{grant_type="client_credentials",outcome="401"\} 1/);
    t.match(
      text,
      /gatehouse_token_responses_total\{grant_type="other",outcome="400"\} 1/,
      'an unknown grant type is not a label value',
    );
    t.match(text, /gatehouse_http_request_duration_seconds_bucket\{le="0\.005",route="\/token",method="POST"\}/);
    t.match(text, /process_cpu_user_seconds_total/);
    t.notMatch(text, secret!, 'nothing a client sent appears');
    t.notMatch(text, /no\/such\/path/);
    t.notMatch(text, /password/);
  },
);

t.test('/metrics counts the statements that carried several concurrent rotations', async (t) => {
  const { app, admin } = await setup(t);
  const counted = async (name: string) => {
    const text = (await admin.inject({ method: 'GET', url: '/metrics' })).body;
    const line = new RegExp(`^${name}\\{statement="refresh_token_rotation"\\} (\\d+)$`, 'm').exec(text);
    return Number(line?.[1] ?? 0);
  };
  const [statements, items] = [
    await counted('gatehouse_db_batch_statements_total'),
    await counted('gatehouse_db_batched_items_total'),
  ];
  // Three rotations asked for in the same turn of the event loop (of tokens nobody holds: nothing rotates).
  const asked = [1, 2, 3].map(() =>
    rotateRefreshToken(app.database.db, {
      tokenHash: hashSecret(generateToken()),
      clientId: 'nobody',
      newHash: hashSecret(generateToken()),
      scopes: [],
      resources: [],
      sealedSuccessor: '',
      jkt: null,
      now: new Date(),
    }),
  );
  t.same(await Promise.all(asked), [undefined, undefined, undefined]);
  t.equal((await counted('gatehouse_db_batch_statements_total')) - statements, 1, 'one statement');
  t.equal((await counted('gatehouse_db_batched_items_total')) - items, 3, 'carrying three rotations');
  t.match(
    (await admin.inject({ method: 'GET', url: '/metrics' })).body,
    /gatehouse_db_batch_fallbacks_total\{statement="authorization_code_redemption"\} \d+/,
  );
});

t.test('without ADMIN_PORT there is no admin listener and no metrics collection', async (t) => {
  const app = await buildTestApp(t, { ...ENV, ADMIN_PORT: '0' });
  t.equal(app.metrics, null);
});

t.test('gatehouse users grants|revoke from the command line', async (t) => {
  // PGlite: a copy of the run's migrated data directory (test/kit/database.ts), so no process here pays initdb.
  const env = TEST_DATABASE_URL
    ? testEnv(ENV)
    : { ...testEnv(ENV), DATA_DIR: await migratedPgliteDataDir(join(t.testdir(), 'pglite')) };
  t.equal((await run([CLI, 'migrate', 'up'], env)).code, 0);
  const handle = await openDatabase(testConfig(env));
  const sub = `cli-user-${randomBytes(4).toString('hex')}`;
  const session = hashSecret(generateToken());
  await insertSession(handle.db, {
    id_hash: session,
    sub,
    auth_time: new Date(),
    expires_at: new Date(Date.now() + 3_600_000),
  });
  await handle.close();

  const none = await run([CLI, 'users', 'grants', sub], env);
  t.equal(none.code, 0, none.stderr);
  t.match(none.stdout, `no grants for ${sub}`);
  const revoked = await run([CLI, 'users', 'revoke', sub, '--json'], env);
  t.equal(revoked.code, 0, revoked.stderr);
  t.same(
    JSON.parse(revoked.stdout),
    { sub, revoked: { refresh_tokens: 0, consents: 0, authorization_codes: 0, sessions: 1 } },
    'the session ended',
  );
  const text = await run([CLI, 'users', 'revoke', sub], env);
  t.match(text.stdout, /0 session\(s\)\. Access tokens already issued stay valid until they expire\./);

  const usage = [
    [['users'], /unknown users action/],
    [['users', 'grants'], /exactly one user id/],
    [['users', 'grants', 'a', 'b'], /exactly one user id/],
    [['users', 'grants', 'a', '--client-id', 'x'], /--client-id goes with users revoke/],
  ] as const;
  // Independent processes: started together, checked in order.
  const results = await Promise.all(usage.map(([args]) => run([CLI, ...args], env)));
  for (const [i, [args, message]] of usage.entries()) {
    const res = results[i]!;
    t.equal(res.code, 2, args.join(' '));
    t.match(res.stderr, message);
  }
});

t.test('/introspect calls access tokens inactive once their user is revoked or their client disabled', async (t) => {
  let skew = 0;
  const { app, admin } = await setup(t, () => new Date(Date.now() + skew));
  const db = app.database.db;
  const sub = `intro-${randomBytes(4).toString('hex')}`;
  const rs = await app.clientAdmin.create({
    name: 'API',
    grant_types: ['client_credentials'],
    resources: ['https://api.example.com'],
  });
  const web = await app.clientAdmin.create({
    name: 'Web',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
  });
  const other = await app.clientAdmin.create({
    name: 'Other',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read'],
  });

  async function userAccessToken(client: { client_id: string }, secret: string): Promise<string> {
    const verifier = randomBytes(32).toString('base64url');
    const code = generateToken();
    await createAuthorizationCode(db, {
      code_hash: hashSecret(code),
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      redirect_uri_given: true,
      code_challenge: challengeOf(verifier),
      scopes: ['read'],
      resources: ['https://api.example.com'],
      sub,
      auth_time: new Date(),
      expires_at: new Date(Date.now() + 60_000),
      consumed_at: null,
      family_id: null,
    });
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...FORM, authorization: basic(client.client_id, secret) },
      payload: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
      }).toString(),
    });
    return res.json().access_token;
  }
  const introspect = async (token: string): Promise<Record<string, unknown>> =>
    (
      await app.inject({
        method: 'POST',
        url: '/introspect',
        headers: { ...FORM, authorization: basic(rs.client.client_id, rs.secret!) },
        payload: `token=${token}`,
      })
    ).json();

  const webToken = await userAccessToken(web.client, web.secret!);
  const otherToken = await userAccessToken(other.client, other.secret!);
  t.match(await introspect(webToken), { active: true, sub, client_id: web.client.client_id });
  t.match(await introspect(otherToken), { active: true });

  await admin.inject({
    method: 'DELETE',
    url: `/admin/users/${sub}/grants?client_id=${web.client.client_id}`,
    headers: AUTH,
  });
  t.same(
    await introspect(webToken),
    { active: false },
    "revoking the user's grant to this client ends its access tokens for online checks",
  );
  t.match(await introspect(otherToken), { active: true }, 'the same user at another client is untouched');
  // A new grant after the revocation gives tokens that are active again (the next whole second: iat has
  // seconds only), so the clock moves past it.
  skew += 1100;
  const fresh = await userAccessToken(web.client, web.secret!);
  t.match(await introspect(fresh), { active: true }, 'tokens issued after the revocation are active');

  await admin.inject({ method: 'DELETE', url: `/admin/users/${sub}/grants`, headers: AUTH });
  t.same(await introspect(otherToken), { active: false }, "revoking everything ends every client's tokens");
  t.same(await introspect(fresh), { active: false });

  const machine = await app.clientAdmin.create({ name: 'Machine', grant_types: ['client_credentials'] });
  const cc = await clientCredentials(app, machine.client.client_id, machine.secret!);
  const machineToken = cc.json().access_token;
  t.match(await introspect(machineToken), { active: true });
  await admin.inject({
    method: 'PATCH',
    url: `/admin/clients/${machine.client.client_id}`,
    headers: AUTH,
    payload: { disabled: true },
  });
  t.same(await introspect(machineToken), { active: false }, "a disabled client's tokens are inactive");
  await admin.inject({ method: 'DELETE', url: `/admin/clients/${machine.client.client_id}`, headers: AUTH });
  t.same(await introspect(machineToken), { active: false }, "and a deleted client's");
});

t.test('gatehouse serve does not run half-started when the admin port is taken', async (t) => {
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const adminPort = (blocker.address() as { port: number }).port;
  const port = await freePort();
  const dataDir = await migratedPgliteDataDir(join(t.testdir(), 'pglite'));
  const env = { ...testEnv({ DATA_DIR: dataDir, PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_TOKEN }) };
  delete (env as Record<string, string>).DATABASE_URL;
  const res = await run([CLI, 'serve'], env);
  t.equal(res.code, 1, 'the process exits with an error');
  t.match(res.stderr, /EADDRINUSE/);
  await t.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'the public listener is not left serving');
});
