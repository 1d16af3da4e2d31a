import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildTestApp } from '../helper.js';
import { bearer, DCR_ENV, JSON_HEADERS, mcpClient, registered } from '../fixtures/registration.js';

function manage(
  app: FastifyInstance,
  method: 'GET' | 'PUT' | 'DELETE',
  clientId: string,
  headers: Record<string, string> = {},
  body?: unknown,
) {
  return app.inject({
    method,
    url: `/register/${encodeURIComponent(clientId)}`,
    headers: body === undefined ? headers : { ...JSON_HEADERS, ...headers },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

t.test('RFC 7592 GET returns the current configuration, without any secret or hash', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, {
    client_name: 'Web',
    redirect_uris: ['https://app.example.com/cb'],
    scope: 'read',
  });
  const res = await manage(app, 'GET', reg.client_id, bearer(reg.registration_access_token));
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  const body = res.json();
  const { client_secret: _secret, registration_access_token: _token, ...rest } = reg;
  t.same(body, rest, 'the registration response minus the one-time credentials');
  t.notOk('client_secret' in body, 'never the secret: only its hash is stored');
  t.equal(body.client_secret_expires_at, 0, 'a confidential client: its secret does not expire');
  for (const key of Object.keys(body)) t.notMatch(key, /hash/);
});

t.test('RFC 7592 §2.1: a missing, wrong or foreign token, or an unknown client, is 401 invalid_token', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const a = await registered(app, mcpClient());
  const b = await registered(app, mcpClient());
  const admin = await app.clientAdmin.create({ name: 'Admin-made', redirect_uris: ['https://app.example.com/cb'] });
  const cases: Array<[string, string, Record<string, string>, string]> = [
    ['no token', a.client_id, {}, 'Bearer'],
    ['wrong token', a.client_id, bearer(`${a.registration_access_token}x`), 'Bearer error="invalid_token"'],
    ["another client's token", a.client_id, bearer(b.registration_access_token), 'Bearer error="invalid_token"'],
    [
      'a client secret-like Basic header',
      a.client_id,
      { authorization: `Basic ${Buffer.from('x:y').toString('base64')}` },
      'Bearer error="invalid_token"',
    ],
    [
      'an unknown client with a token',
      'no-such-client',
      bearer(a.registration_access_token),
      'Bearer error="invalid_token"',
    ],
    [
      'an admin-made client',
      admin.client.client_id,
      bearer(a.registration_access_token),
      'Bearer error="invalid_token"',
    ],
    ['a long client id', 'x'.repeat(100), bearer(a.registration_access_token), 'Bearer error="invalid_token"'],
  ];
  for (const [name, id, headers, challenge] of cases) {
    for (const method of ['GET', 'PUT', 'DELETE'] as const) {
      const res = await manage(
        app,
        method,
        id,
        headers,
        method === 'PUT' ? { client_id: id, redirect_uris: ['http://127.0.0.1/x'] } : undefined,
      );
      t.equal(res.statusCode, 401, `${method} ${name}`);
      t.equal(res.json().error, 'invalid_token', `${method} ${name}`);
      t.equal(res.headers['www-authenticate'], challenge, `${method} ${name}`);
    }
  }
  // Past Fastify's maxParamLength (100) the router answers before the route: 400, the same for any id.
  const tooLong = await manage(app, 'GET', 'x'.repeat(300), bearer(a.registration_access_token));
  t.equal(tooLong.statusCode, 400);
  t.equal(tooLong.json().error, 'invalid_request');
  t.ok(await app.clientAdmin.find(a.client_id), 'nothing was deleted');
  t.same((await app.clientAdmin.find(a.client_id))?.redirect_uris, a.redirect_uris, 'nothing was changed');
});

t.test('RFC 7592 PUT replaces the metadata: omitted fields go back to their defaults', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, mcpClient({ client_uri: 'https://mcp.example.org', contacts: ['a@example.org'] }));
  await app.clientAdmin.update(reg.client_id, { resources: ['https://mcp.example.com/mcp'], default_scopes: ['read'] });
  const token = bearer(reg.registration_access_token);
  const res = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    client_name: 'Renamed',
    redirect_uris: ['http://127.0.0.1/new-callback'],
    scope: 'read',
    // RFC 7592 §2.2: echoed server fields are ignored.
    registration_client_uri: 'https://evil.example/x',
    client_id_issued_at: 1,
    client_secret_expires_at: 5,
    registration_access_token: 'nope',
    skip_consent: true,
  });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  const body = res.json();
  t.equal(body.client_name, 'Renamed');
  t.same(body.redirect_uris, ['http://127.0.0.1/new-callback']);
  t.same(body.grant_types, ['authorization_code'], 'grant_types omitted: the default');
  t.equal(body.token_endpoint_auth_method, 'client_secret_basic', 'auth method omitted: the RFC 7591 default');
  t.match(body.client_secret, /^[A-Za-z0-9_-]{43}$/, 'made confidential: a new secret, shown once');
  t.equal(body.application_type, 'native', 'inferred again');
  t.notOk('client_uri' in body, 'omitted: deleted');
  t.notOk('contacts' in body, 'omitted: deleted');
  t.equal(body.client_id_issued_at, reg.client_id_issued_at);
  t.equal(body.registration_client_uri, reg.registration_client_uri);
  t.notOk('registration_access_token' in body, 'the token is not rotated');
  const row = await app.clientAdmin.find(reg.client_id);
  t.same(row?.resources, ['https://mcp.example.com/mcp'], "the operator's resource restriction is kept");
  t.same(row?.default_scopes, ['read']);
  t.equal(row?.skip_consent, false);

  // The secret now has to match when sent.
  const wrongSecret = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    client_secret: 'nope',
    redirect_uris: ['http://127.0.0.1/x'],
  });
  t.equal(wrongSecret.statusCode, 400);
  t.match(wrongSecret.json(), {
    error: 'invalid_client_metadata',
    error_description: /^client_secret: does not match/,
  });
  const rightSecret = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    client_secret: body.client_secret,
    redirect_uris: ['http://127.0.0.1/x'],
    token_endpoint_auth_method: 'client_secret_post',
  });
  t.equal(rightSecret.statusCode, 200, rightSecret.body);
  t.notOk('client_secret' in rightSecret.json(), 'the existing secret is kept, not shown');
  t.equal(rightSecret.json().client_secret_expires_at, 0);
  const backToPublic = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    redirect_uris: ['http://127.0.0.1/x'],
    token_endpoint_auth_method: 'none',
  });
  t.equal(backToPublic.statusCode, 200);
  t.equal((await app.clientAdmin.find(reg.client_id))?.secret_hash, null, 'made public: the secret is gone');
});

t.test('RFC 7592 PUT errors', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, mcpClient());
  const token = bearer(reg.registration_access_token);
  const missingId = await manage(app, 'PUT', reg.client_id, token, { redirect_uris: ['http://127.0.0.1/x'] });
  t.match(missingId.json(), { error: 'invalid_client_metadata', error_description: /^client_id: must be present/ });
  const otherId = await manage(app, 'PUT', reg.client_id, token, {
    client_id: 'other',
    redirect_uris: ['http://127.0.0.1/x'],
  });
  t.equal(otherId.statusCode, 400);
  const badUri = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    redirect_uris: ['http://app.example.com/cb'],
  });
  t.match(badUri.json(), { error: 'invalid_redirect_uri', error_description: /^redirect_uris\[0\]/ });
  const badScope = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    redirect_uris: ['http://127.0.0.1/x'],
    scope: 7,
  });
  t.match(badScope.json(), { error: 'invalid_client_metadata', error_description: /^scope:/ });
  const secretForPublic = await manage(app, 'PUT', reg.client_id, token, {
    client_id: reg.client_id,
    client_secret: 'guess',
    redirect_uris: ['http://127.0.0.1/x'],
    token_endpoint_auth_method: 'none',
  });
  t.match(
    secretForPublic.json(),
    { error: 'invalid_client_metadata', error_description: /^client_secret/ },
    'a public client has no secret to match',
  );
  const form = await app.inject({
    method: 'PUT',
    url: `/register/${reg.client_id}`,
    headers: { ...token, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `client_id=${reg.client_id}`,
  });
  t.equal(form.statusCode, 415);
  const malformed = await manage(app, 'PUT', reg.client_id, token, '{"client_id":');
  t.equal(malformed.statusCode, 400);
  const array = await manage(app, 'PUT', reg.client_id, token, '[]');
  t.equal(array.statusCode, 400);
  t.same(
    (await app.clientAdmin.find(reg.client_id))?.redirect_uris,
    reg.redirect_uris,
    'unchanged after every failure',
  );
});

t.test('DCR_ALWAYS_RETURN_CLIENT_SECRET: the unstored secret sent back in a PUT is ignored', async (t) => {
  const app = await buildTestApp(t, { ...DCR_ENV, DCR_ALWAYS_RETURN_CLIENT_SECRET: 'true' });
  const reg = await registered(app, mcpClient());
  const res = await manage(app, 'PUT', reg.client_id, bearer(reg.registration_access_token), {
    ...mcpClient(),
    client_id: reg.client_id,
    client_secret: reg.client_secret,
  });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json().token_endpoint_auth_method, 'none');
  t.notOk('client_secret' in res.json());
});

t.test('RFC 7592 DELETE removes the client; its token then works nowhere', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const reg = await registered(app, mcpClient());
  const token = bearer(reg.registration_access_token);
  const del = await manage(app, 'DELETE', reg.client_id, token);
  t.equal(del.statusCode, 204);
  t.equal(del.body, '');
  t.equal(await app.clientAdmin.find(reg.client_id), undefined);
  t.equal(await app.clients.get(reg.client_id), undefined, 'the cache was invalidated');
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    const res = await manage(
      app,
      method,
      reg.client_id,
      token,
      method === 'PUT' ? { client_id: reg.client_id } : undefined,
    );
    t.equal(res.statusCode, 401, `${method} after delete is 401, not 404`);
  }
});
