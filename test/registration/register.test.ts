import t from 'tap';
import { basic } from '../fixtures/clients.js';
import { clientMetadataPolicy, validateClientMetadata } from '../../src/oauth/client-metadata.js';
import { resolveRedirectUri } from '../../src/oauth/checks/redirect-uri.js';
import { buildTestApp, testConfig } from '../helper.js';
import { bearer, DCR_ENV, ISSUER, mcpClient, register, registered } from '../fixtures/registration.js';

t.test('off by default: /register is the generic 404 and metadata has no registration_endpoint', async (t) => {
  const app = await buildTestApp(t);
  const res = await register(app, mcpClient());
  t.equal(res.statusCode, 404);
  t.same(res.json(), { error: 'not_found', error_description: 'no such endpoint' });
  t.equal((await app.inject({ method: 'GET', url: '/register/abc' })).statusCode, 404);
  const doc = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  t.notOk('registration_endpoint' in doc);
});

t.test('a public MCP-style client registers: 201, RFC 7591 §3.2.1 shape, no secret, native inferred', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const doc = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  t.equal(doc.registration_endpoint, `${ISSUER}/register`, 'advertised when on');

  const before = Math.floor(Date.now() / 1000);
  const res = await register(app, mcpClient());
  t.equal(res.statusCode, 201, res.body);
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(res.headers.pragma, 'no-cache');
  t.match(res.headers['content-type'], /^application\/json/);
  const body = res.json();
  t.match(body.client_id, /^[A-Za-z0-9_-]{43}$/);
  t.notOk('client_secret' in body, 'a public client gets no secret');
  t.notOk('client_secret_expires_at' in body, 'no secret, no expiry');
  t.ok(body.client_id_issued_at >= before - 1 && body.client_id_issued_at <= before + 5);
  t.match(body.registration_access_token, /^[A-Za-z0-9_-]{43}$/, '256-bit token');
  t.equal(body.registration_client_uri, `${ISSUER}/register/${body.client_id}`);
  t.equal(body.client_name, 'MCP Inspector');
  t.same(body.redirect_uris, ['http://localhost:6274/oauth/callback', 'http://127.0.0.1:33418/callback']);
  t.same(body.grant_types, ['authorization_code', 'refresh_token']);
  t.same(body.response_types, ['code']);
  t.equal(body.token_endpoint_auth_method, 'none');
  t.equal(body.scope, 'read write');
  t.equal(body.application_type, 'native', 'loopback redirects without application_type: native');
  for (const key of Object.keys(body)) t.notMatch(key, /hash/, `${key} is not a hash`);
  t.notOk('skip_consent' in body);

  const row = await app.clientAdmin.find(body.client_id);
  t.equal(row?.source, 'registration');
  t.equal(row?.secret_hash, null);
  t.not(row?.registration_access_token_hash, null);
  t.not(row?.registration_access_token_hash, body.registration_access_token, 'only a hash is stored');
});

t.test('RFC 7591 §2 defaults: authorization_code, code, client_secret_basic; a name when none is given', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const body = await registered(app, { redirect_uris: ['https://app.example.com/cb'] });
  t.same(body.grant_types, ['authorization_code']);
  t.same(body.response_types, ['code']);
  t.equal(body.token_endpoint_auth_method, 'client_secret_basic');
  t.equal(body.application_type, 'web', 'https redirect: web');
  t.equal(body.client_name, 'app.example.com', 'the redirect host stands in for client_name');
  t.match(body.client_secret, /^[A-Za-z0-9_-]{43}$/);
  t.equal(body.client_secret_expires_at, 0);
  t.notOk('scope' in body, 'no scope registered, none returned');

  const privateUse = await registered(app, {
    redirect_uris: ['com.example.app:/oauth'],
    token_endpoint_auth_method: 'none',
  });
  t.equal(privateUse.application_type, 'native', 'a private-use scheme: native');
  t.equal(privateUse.client_name, 'com.example.app');
  const unnamed = await registered(app, { redirect_uris: ['https://app.example.com/cb'] });
  t.equal(unnamed.client_name, 'app.example.com', 'no client_name: the redirect host');
  const mixed = await register(app, { redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1/cb'] });
  t.equal(mixed.json().error, 'invalid_redirect_uri', 'mixed web and loopback redirects are not inferred native');
  // VS Code's registration: a public native app with claimed https (RFC 8252 §7.2) and loopback (§7.3) redirects.
  const vscode = await registered(app, {
    redirect_uris: ['https://vscode.dev/redirect', 'http://127.0.0.1/'],
    token_endpoint_auth_method: 'none',
  });
  t.equal(vscode.application_type, 'native', 'a public client with https and loopback redirects: native');
  const publicWeb = await registered(app, {
    redirect_uris: ['https://spa.example.com/cb'],
    token_endpoint_auth_method: 'none',
  });
  t.equal(publicWeb.application_type, 'web', 'a public client with only https redirects: web');
  const explicitWeb = await register(app, { application_type: 'web', redirect_uris: ['http://127.0.0.1/cb'] });
  t.equal(explicitWeb.json().error, 'invalid_redirect_uri', 'an explicit web application_type is kept');
});

t.test('all RFC 7591 metadata is stored and returned; unknown members are ignored (RFC 7591 §2)', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const body = await registered(app, {
    client_name: 'Full Client',
    redirect_uris: ['https://app.example.com/cb'],
    post_logout_redirect_uris: ['https://app.example.com/bye'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'read',
    client_uri: 'https://app.example.com',
    logo_uri: 'https://app.example.com/logo.png',
    policy_uri: 'https://app.example.com/privacy',
    tos_uri: 'https://app.example.com/tos',
    contacts: ['ops@example.com'],
    software_id: '4NRB1-0XZABZI9E6-5SM3R',
    software_version: '2.1',
    jwks_uri: 'https://app.example.com/jwks',
    resource: 'https://mcp.example.com/mcp',
    skip_consent: true,
    client_name_extra: { nested: [1, 2] },
    'client_name#ja-Jpan-JP': 'クライアント名',
  });
  t.match(body, {
    client_name: 'Full Client',
    post_logout_redirect_uris: ['https://app.example.com/bye'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'read',
    client_uri: 'https://app.example.com',
    logo_uri: 'https://app.example.com/logo.png',
    policy_uri: 'https://app.example.com/privacy',
    tos_uri: 'https://app.example.com/tos',
    contacts: ['ops@example.com'],
    application_type: 'web',
    // Understood since private_key_jwt (RFC 7591 §2): stored and returned, though this client uses a secret.
    jwks_uri: 'https://app.example.com/jwks',
  });
  for (const ignored of ['software_id', 'software_version', 'resource', 'skip_consent', 'client_name_extra'])
    t.notOk(ignored in body, `${ignored} ignored`);
  const row = await app.clientAdmin.find(body.client_id);
  t.equal(row?.skip_consent, false, 'skip_consent from a client is ignored');
  t.same(row?.resources, [], 'resources are not client-settable');
});

t.test('invalid_redirect_uri (RFC 7591 §3.2.2) names the URI', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'http on a non-loopback host',
      { redirect_uris: ['http://app.example.com/cb'] },
      /^redirect_uris\[0\]: must use https/,
    ],
    [
      'a fragment',
      { redirect_uris: ['https://app.example.com/cb#x'] },
      /^redirect_uris\[0\]: must not contain a fragment/,
    ],
    [
      'a relative URI',
      { redirect_uris: ['https://app.example.com/ok', '/cb'] },
      /^redirect_uris\[1\]: must be an absolute URI/,
    ],
    ['javascript:', { redirect_uris: ['javascript:alert(1)'] }, /^redirect_uris\[0\]: must use https/],
    [
      'a private-use scheme for a web client',
      { application_type: 'web', redirect_uris: ['com.example.app:/cb'] },
      /^redirect_uris\[0\]: private-use URI schemes are allowed only for native clients/,
    ],
    [
      'none for authorization_code',
      { grant_types: ['authorization_code'] },
      /^redirect_uris: at least one redirect URI is required/,
    ],
    [
      'a string instead of an array',
      { redirect_uris: 'https://app.example.com/cb' },
      /^redirect_uris: must be an array of strings/,
    ],
    ['a number in the array', { redirect_uris: [42] }, /^redirect_uris\[0\]: must be a string/],
  ];
  for (const [name, body, description] of cases) {
    const res = await register(app, body);
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().error, 'invalid_redirect_uri', name);
    t.match(res.json().error_description, description, name);
    t.equal(res.headers['cache-control'], 'no-store');
  }
});

t.test('invalid_client_metadata (RFC 7591 §3.2.2) names the field', async (t) => {
  const app = await buildTestApp(t, { ...DCR_ENV, ENFORCE_SCOPES: 'true' });
  const redirect = { redirect_uris: ['https://app.example.com/cb'] };
  const before = (await app.clientAdmin.list()).length;
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'an unknown grant type',
      { ...redirect, grant_types: ['authorization_code', 'password'] },
      /^grant_types\[1\]: must be one of/,
    ],
    [
      'implicit response type',
      { ...redirect, response_types: ['token'] },
      /^response_types\[0\]: only ["']code["'] is supported/,
    ],
    [
      'client_credentials (operators create machine clients)',
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' },
      /^grant_types: client_credentials is not available to self-registered clients/,
    ],
    [
      'refresh_token alone',
      { grant_types: ['refresh_token'] },
      /^grant_types: refresh_token requires authorization_code/,
    ],
    ['bad scope syntax', { ...redirect, scope: 'read wr\u00e9te' }, /^scope: ["']wr.te["'] is not a valid scope-token/],
    ['scope as an array', { ...redirect, scope: ['read'] }, /^scope: must be a string of space-separated scope values/],
    [
      'an unknown scope when enforced',
      { ...redirect, scope: 'read delete' },
      /^scope: ["']delete["'] is not in the scope catalogue/,
    ],
    [
      'an unsupported auth method',
      { ...redirect, token_endpoint_auth_method: 'tls_client_auth' },
      /^token_endpoint_auth_method: must be one of client_secret_basic, client_secret_post, private_key_jwt, none/,
    ],
    [
      'an unknown application_type',
      { ...redirect, application_type: 'desktop' },
      /^application_type: must be one of web, native/,
    ],
    ['client_name not a string', { ...redirect, client_name: ['A', 'B'] }, /^client_name: must be a string/],
    ['client_name empty', { ...redirect, client_name: '   ' }, /^client_name: must not be empty/],
    [
      'client_name too long',
      { ...redirect, client_name: 'x'.repeat(201) },
      /^client_name: must be at most 200 characters/,
    ],
    ['http client_uri', { ...redirect, client_uri: 'http://app.example.com' }, /^client_uri: must be an https URL/],
    ['contacts as a string', { ...redirect, contacts: 'ops@example.com' }, /^contacts: must be an array of strings/],
    [
      'grant_types as a string',
      { ...redirect, grant_types: 'authorization_code' },
      /^grant_types: must be an array of strings/,
    ],
    [
      'a loopback post-logout URI for a web client',
      { ...redirect, post_logout_redirect_uris: ['http://127.0.0.1/bye'] },
      /^post_logout_redirect_uris\[0\]: http on loopback/,
    ],
  ];
  for (const [name, body, description] of cases) {
    const res = await register(app, body);
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().error, 'invalid_client_metadata', name);
    t.match(res.json().error_description, description, name);
  }
  t.equal((await app.clientAdmin.list()).length, before, 'nothing was registered');
});

t.test('malformed requests never cause a 500', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const cases: Array<[string, () => ReturnType<typeof register>, number]> = [
    ['malformed JSON', () => register(app, '{"redirect_uris": ['), 400],
    ['a JSON array', () => register(app, '[1,2]'), 400],
    ['a JSON string', () => register(app, '"hello"'), 400],
    ['JSON null', () => register(app, 'null'), 400],
    [
      '__proto__ pollution',
      () => register(app, '{"__proto__": {"x": 1}, "redirect_uris": ["https://a.example/cb"]}'),
      400,
    ],
    [
      'a huge body',
      () =>
        register(app, {
          client_name: 'x',
          redirect_uris: ['https://app.example.com/cb'],
          contacts: Array.from({ length: 5000 }, (_, i) => `c${i}@example.com`),
        }),
      413,
    ],
    [
      'too many redirect URIs',
      () => register(app, { redirect_uris: Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`) }),
      400,
    ],
    [
      'a form body',
      () =>
        register(app, 'client_name=x&redirect_uris=https://a.example/cb', {
          'content-type': 'application/x-www-form-urlencoded',
        }),
      415,
    ],
    ['text/plain', () => register(app, '{}', { 'content-type': 'text/plain' }), 415],
    [
      'nested objects everywhere',
      () => register(app, { client_name: { a: 1 }, redirect_uris: [{ a: 1 }], scope: { a: 1 } }),
      400,
    ],
  ];
  for (const [name, run, status] of cases) {
    const res = await run();
    t.equal(res.statusCode, status, `${name}: ${res.body}`);
    t.type(res.json().error, 'string', name);
  }
  const noType = await app.inject({ method: 'POST', url: '/register', payload: '' });
  t.equal(noType.statusCode, 415, 'no body at all');
  const wrongMethod = await app.inject({ method: 'PATCH', url: '/register' });
  t.equal(wrongMethod.statusCode, 405);
});

t.test('DCR_INITIAL_ACCESS_TOKEN: registration needs that bearer token (RFC 7591 §3, RFC 6750 §3)', async (t) => {
  const app = await buildTestApp(t, { ...DCR_ENV, DCR_INITIAL_ACCESS_TOKEN: 'initial-token-123' });
  const missing = await register(app, mcpClient());
  t.equal(missing.statusCode, 401);
  t.equal(missing.json().error, 'invalid_token');
  t.equal(missing.headers['www-authenticate'], 'Bearer', 'RFC 6750 §3.1: no error code when no token was sent');
  for (const [name, header] of [
    ['wrong token', 'Bearer initial-token-124'],
    ['prefix of the token', 'Bearer initial-token-12'],
    ['another scheme', basic('initial-token-123', 'x')],
    ['malformed bearer', 'Bearer a b'],
  ] as const) {
    const res = await register(app, mcpClient(), { authorization: header });
    t.equal(res.statusCode, 401, name);
    t.equal(res.json().error, 'invalid_token', name);
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', name);
  }
  const unauthorisedBadBody = await register(app, '{not json', {});
  t.equal(unauthorisedBadBody.statusCode, 401, 'the token is checked before the body is read');
  const ok = await register(app, mcpClient(), bearer('initial-token-123'));
  t.equal(ok.statusCode, 201, ok.body);
  const lower = await register(app, mcpClient(), { authorization: 'bearer initial-token-123' });
  t.equal(lower.statusCode, 201, 'the scheme is case-insensitive');
});

t.test('wrong initial access tokens count against the per-address rate limit', async (t) => {
  const app = await buildTestApp(t, {
    ...DCR_ENV,
    DCR_INITIAL_ACCESS_TOKEN: 'initial-token-123',
    RATE_LIMIT_PER_MINUTE: '3',
  });
  const codes: number[] = [];
  for (let i = 0; i < 5; i++)
    codes.push((await register(app, mcpClient(), { authorization: `Bearer guess-${i}` })).statusCode);
  t.same(codes, [401, 401, 401, 429, 429], 'guessing is throttled like any other registration attempt');
});

t.test('CORS is open on /register for browser-based clients', async (t) => {
  const app = await buildTestApp(t, DCR_ENV);
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/register',
    headers: {
      origin: 'http://localhost:6274',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  });
  t.equal(preflight.statusCode, 204);
  t.equal(preflight.headers['access-control-allow-origin'], '*');
  const res = await register(app, mcpClient(), { origin: 'http://localhost:6274' });
  t.equal(res.headers['access-control-allow-origin'], '*');
});

t.test('DCR_ALWAYS_RETURN_CLIENT_SECRET: a public client gets an unstored secret and stays public', async (t) => {
  const app = await buildTestApp(t, { ...DCR_ENV, DCR_ALWAYS_RETURN_CLIENT_SECRET: 'true' });
  const body = await registered(app, mcpClient());
  t.match(body.client_secret, /^[A-Za-z0-9_-]{43}$/, 'a secret is returned');
  t.equal(body.client_secret_expires_at, 0);
  t.equal(body.token_endpoint_auth_method, 'none', 'the client stays public');
  const row = await app.clientAdmin.find(body.client_id);
  t.equal(row?.secret_hash, null, 'the secret is not stored');
  t.equal(row?.token_endpoint_auth_method, 'none');
  const confidential = await registered(app, { redirect_uris: ['https://app.example.com/cb'] });
  t.not(confidential.client_secret, undefined);
  t.not(
    (await app.clientAdmin.find(confidential.client_id))?.secret_hash,
    null,
    'a confidential client keeps its real secret',
  );

  const off = await buildTestApp(t, DCR_ENV);
  t.notOk('client_secret' in (await registered(off, mcpClient())), 'off: no secret for none');
});

t.test(
  'http://localhost for an operator’s web client: allowed outside production, exact match; refused in production and to self-registration',
  async (t) => {
    const web = { application_type: 'web', redirect_uris: ['http://localhost:3000/cb'] };
    const dev = await buildTestApp(t, { ...DCR_ENV, NODE_ENV: 'development' });
    const { client: created } = await dev.clientAdmin.create({ name: 'Local web app', ...web });
    t.same(created.redirect_uris, ['http://localhost:3000/cb'], "an operator's web app in local development");
    t.equal(created.application_type, 'web');
    const selfRegistered = await register(dev, web);
    t.equal(selfRegistered.statusCode, 400, 'a client registering itself keeps RFC 8252 §7.3 in every mode');
    t.match(selfRegistered.json().error_description, /http on loopback is allowed only for native clients/);
    // A web client gets no loopback port exception (RFC 8252 §7.3 is for native apps): exact match only.
    const policy = clientMetadataPolicy(dev.config);
    const client = { redirect_uris: ['http://localhost:3000/cb'], application_type: 'web' };
    t.equal(resolveRedirectUri(client, 'http://localhost:3000/cb'), 'http://localhost:3000/cb');
    t.throws(
      () => resolveRedirectUri(client, 'http://localhost:4000/cb'),
      { message: /redirect_uri does not match/ },
      'another port',
    );
    t.equal(policy.webHttpLoopback, true);

    const production = clientMetadataPolicy(
      testConfig({
        NODE_ENV: 'production',
        ISSUER: 'https://auth.example.com',
        KEY_ENCRYPTION_SECRET: 'Zq8vR2mX4tL9wB7nK3pC6yH1dF5gJ0sA',
      }),
    );
    t.equal(production.webHttpLoopback, false);
    t.throws(() => validateClientMetadata({ name: 'Web', ...web }, production), {
      message:
        /^redirect_uris\[0\]: http on loopback is allowed only for native clients \(RFC 8252 §7\.3\); set application_type to native/,
    });
    t.throws(
      () =>
        validateClientMetadata(
          {
            name: 'Web',
            application_type: 'web',
            redirect_uris: ['https://app.example.com/cb'],
            post_logout_redirect_uris: ['http://localhost:3000/bye'],
          },
          production,
        ),
      { message: /^post_logout_redirect_uris\[0\]: http on loopback/ },
      'post-logout URIs follow the same rule',
    );
    t.doesNotThrow(
      () =>
        validateClientMetadata(
          { name: 'Native', application_type: 'native', redirect_uris: ['http://127.0.0.1/cb'] },
          production,
        ),
      'native apps keep their loopback redirect in production',
    );
  },
);
