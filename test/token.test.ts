import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import t from 'tap';
import { buildApp } from '../src/app.js';
import { openDatabase } from '../src/db/connect.js';
import { basic } from './fixtures/clients.js';
import { buildTestApp, testConfig, testDatabase } from './helper.js';

const ENV = {
  ISSUER: 'https://auth.example.com',
  SCOPES: '{"read":"Read your data","write":"Change your data","admin":"Administer"}',
  RESOURCES: 'https://api.example.com, https://mcp.example.com/mcp',
};
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function machine(app: FastifyInstance, overrides: Record<string, unknown> = {}) {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
    ...overrides,
  });
  return { id: client.client_id, secret: secret! };
}

function token(app: FastifyInstance, body: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/token', headers: { ...FORM, ...headers }, payload: body });
}

async function verify(app: FastifyInstance, jwt: string) {
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  return jwtVerify(jwt, createLocalJWKSet(jwks), { issuer: 'https://auth.example.com', typ: 'at+jwt' });
}

t.test('client_credentials with client_secret_basic issues an RFC 9068 access token', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app, { scopes: ['read', 'write'], default_scopes: ['read'] });
  const res = await token(app, 'grant_type=client_credentials', { authorization: basic(c.id, c.secret) });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.headers['cache-control'], 'no-store', 'RFC 6749 §5.1');
  t.equal(res.headers.pragma, 'no-cache');
  const body = res.json();
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type']);
  t.equal(body.token_type, 'Bearer');
  t.equal(body.expires_in, 3600);
  t.equal(body.scope, 'read', 'default scopes when none is requested');
  const header = decodeProtectedHeader(body.access_token);
  t.equal(header.typ, 'at+jwt');
  t.equal(header.alg, 'ES256');
  t.type(header.kid, 'string');
  const { payload } = await verify(app, body.access_token);
  t.equal(payload.iss, 'https://auth.example.com');
  t.equal(payload.sub, c.id, 'the client acts for itself');
  t.equal(payload.client_id, c.id);
  t.equal(payload.aud, 'https://api.example.com', 'the default resource: the first of RESOURCES');
  t.equal(payload.scope, 'read');
  t.equal(payload.exp! - payload.iat!, 3600);
  t.match(payload.jti, /^[A-Za-z0-9_-]{22}$/);
  t.ok(Math.abs(payload.iat! - Date.now() / 1000) < 5);
  t.notOk('auth_time' in payload, 'no user, no auth_time');
});

t.test('client_secret_post works for a client registered with it', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app, { token_endpoint_auth_method: 'client_secret_post' });
  const res = await token(
    app,
    new URLSearchParams({ grant_type: 'client_credentials', client_id: c.id, client_secret: c.secret }).toString(),
  );
  t.equal(res.statusCode, 200, res.body);
  t.notOk('scope' in res.json(), 'no scope member when no scope was granted');
});

t.test(
  'client authentication failures are invalid_client (401), with a Basic challenge when Basic was tried',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const c = await machine(app);
    const post = await machine(app, { token_endpoint_auth_method: 'client_secret_post' });
    const disabled = await machine(app);
    await app.clientAdmin.setDisabled(disabled.id, true);
    const cases: Array<[string, string, Record<string, string>, boolean]> = [
      ['wrong secret', 'grant_type=client_credentials', { authorization: basic(c.id, `${c.secret}x`) }, true],
      ['unknown client', 'grant_type=client_credentials', { authorization: basic('no-such-client', c.secret) }, true],
      [
        'disabled client',
        'grant_type=client_credentials',
        { authorization: basic(disabled.id, disabled.secret) },
        true,
      ],
      ['malformed Basic header', 'grant_type=client_credentials', { authorization: 'Basic %%%not-base64' }, true],
      [
        'Basic without a colon',
        'grant_type=client_credentials',
        { authorization: `Basic ${Buffer.from('justanid').toString('base64')}` },
        true,
      ],
      [
        'post credentials for a basic client',
        `grant_type=client_credentials&client_id=${c.id}&client_secret=${c.secret}`,
        {},
        false,
      ],
      [
        'basic credentials for a post client',
        'grant_type=client_credentials',
        { authorization: basic(post.id, post.secret) },
        true,
      ],
      ['no credentials at all', 'grant_type=client_credentials', {}, false],
    ];
    for (const [name, body, headers, challenged] of cases) {
      const res = await token(app, body, headers);
      t.equal(res.statusCode, 401, name);
      t.equal(res.json().error, 'invalid_client', name);
      t.equal(res.headers['cache-control'], 'no-store', name);
      if (challenged) t.equal(res.headers['www-authenticate'], 'Basic realm="gatehouse"', `${name}: challenged`);
    }
    const unknown = (
      await token(app, 'grant_type=client_credentials', { authorization: basic('no-such-client', 'x') })
    ).json();
    const wrong = (await token(app, 'grant_type=client_credentials', { authorization: basic(c.id, 'x') })).json();
    t.same(unknown, wrong, 'unknown client and wrong secret are indistinguishable');
  },
);

t.test('unauthorized_client: a grant the client was not registered for', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { client, secret } = await app.clientAdmin.create({
    name: 'Web',
    grant_types: ['authorization_code'],
    redirect_uris: ['https://app.example.com/cb'],
  });
  const res = await token(app, 'grant_type=client_credentials', { authorization: basic(client.client_id, secret!) });
  t.equal(res.statusCode, 400);
  t.same(res.json(), { error: 'unauthorized_client', error_description: 'this client may not use client_credentials' });
});

t.test('invalid_request: missing, repeated or wrongly typed parameters', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app);
  const auth = { authorization: basic(c.id, c.secret) };
  const cases: Array<[string, string, RegExp]> = [
    ['missing grant_type', 'scope=read', /^missing parameter: grant_type$/],
    ['empty grant_type counts as missing (RFC 6749 §3.1)', 'grant_type=', /^missing parameter: grant_type$/],
    [
      'repeated grant_type',
      'grant_type=client_credentials&grant_type=client_credentials',
      /^parameter grant_type is repeated \(RFC 6749 section 3\.2\)$/,
    ],
    ['repeated scope', 'grant_type=client_credentials&scope=read&scope=write', /^parameter scope is repeated/],
    [
      'oversized scope',
      `grant_type=client_credentials&scope=${'a'.repeat(3000)}`,
      /^scope must NOT have more than 2048 characters$/,
    ],
  ];
  for (const [name, body, description] of cases) {
    const res = await token(app, body, auth);
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().error, 'invalid_request', name);
    t.match(res.json().error_description, description, name);
  }
});

t.test('unsupported_grant_type', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app);
  const res = await token(app, 'grant_type=password&username=u&password=p', { authorization: basic(c.id, c.secret) });
  t.equal(res.statusCode, 400);
  t.same(res.json(), { error: 'unsupported_grant_type', error_description: 'unsupported grant_type: password' });
});

t.test('the token endpoint takes form bodies only, of a bounded size', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app);
  const json = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { authorization: basic(c.id, c.secret), 'content-type': 'application/json' },
    payload: { grant_type: 'client_credentials' },
  });
  t.equal(json.statusCode, 415);
  t.equal(json.json().error, 'invalid_request');
  const none = await app.inject({ method: 'POST', url: '/token', headers: { authorization: basic(c.id, c.secret) } });
  t.equal(none.statusCode, 415, 'no body media type at all is the wrong media type (one check, src/http/form.ts)');
  t.equal(none.json().error, 'invalid_request');
  const big = await token(app, `grant_type=client_credentials&x=${'y'.repeat(20000)}`, {
    authorization: basic(c.id, c.secret),
  });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error, 'payload_too_large');
  const get = await app.inject({ method: 'GET', url: '/token' });
  t.equal(get.statusCode, 405);
});

t.test('scope rules: catalogue, client allow-list, syntax, and ENFORCE_SCOPES', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app, { scopes: ['read', 'write'] });
  const auth = { authorization: basic(c.id, c.secret) };
  const ok = await token(app, 'grant_type=client_credentials&scope=write%20read%20read', auth);
  t.equal(ok.json().scope, 'write read', 'granted as requested, duplicates folded');
  const cases: Array<[string, RegExp]> = [
    ['scope=delete', /^unknown scope: delete$/],
    ['scope=admin', /^scope not allowed for this client: admin$/],
    ['scope=read%20%20write', /separated by single spaces/],
    ['scope=%22read%22', /character not allowed/],
  ];
  for (const [param, description] of cases) {
    const res = await token(app, `grant_type=client_credentials&${param}`, auth);
    t.equal(res.statusCode, 400, param);
    t.equal(res.json().error, 'invalid_scope', param);
    t.match(res.json().error_description, description, param);
  }
  const everything = await machine(app);
  const all = await token(app, 'grant_type=client_credentials&scope=admin', {
    authorization: basic(everything.id, everything.secret),
  });
  t.equal(all.json().scope, 'admin', 'a client with no list may ask for any catalogue scope');

  const lax = await buildTestApp(t, { ...ENV, ENFORCE_SCOPES: 'false' });
  const l = await machine(lax);
  const free = await token(lax, 'grant_type=client_credentials&scope=anything:goes', {
    authorization: basic(l.id, l.secret),
  });
  t.equal(free.statusCode, 200);
  t.equal(free.json().scope, 'anything:goes', 'unenforced scopes pass through');
});

t.test(
  'resource rules (RFC 8707): each resource becomes aud; unknown or disallowed ones are invalid_target',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const c = await machine(app);
    const auth = { authorization: basic(c.id, c.secret) };
    const one = await token(
      app,
      'grant_type=client_credentials&resource=HTTPS%3A%2F%2FMCP.example.com%3A443%2Fmcp',
      auth,
    );
    t.equal(one.statusCode, 200, one.body);
    t.equal((await verify(app, one.json().access_token)).payload.aud, 'https://mcp.example.com/mcp', 'canonicalised');
    const two = await token(
      app,
      'grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fmcp.example.com%2Fmcp',
      auth,
    );
    t.same((await verify(app, two.json().access_token)).payload.aud, [
      'https://api.example.com',
      'https://mcp.example.com/mcp',
    ]);
    const cases: Array<[string, RegExp]> = [
      ['resource=https%3A%2F%2Fother.example.com', /^unknown resource: https:\/\/other\.example\.com$/],
      ['resource=https%3A%2F%2Fapi.example.com%23frag', /must not contain a fragment/],
      ['resource=relative%2Fpath', /must be an absolute URI/],
    ];
    for (const [param, description] of cases) {
      const res = await token(app, `grant_type=client_credentials&${param}`, auth);
      t.equal(res.statusCode, 400, param);
      t.equal(res.json().error, 'invalid_target', param);
      t.match(res.json().error_description, description, param);
    }
    const empty = await token(app, 'grant_type=client_credentials&resource=', auth);
    t.equal(
      (await verify(app, empty.json().access_token)).payload.aud,
      'https://api.example.com',
      'an empty resource counts as omitted (RFC 6749 §3.1)',
    );
    const narrow = await machine(app, { resources: ['https://mcp.example.com/mcp'] });
    const denied = await token(app, 'grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com', {
      authorization: basic(narrow.id, narrow.secret),
    });
    t.equal(denied.json().error, 'invalid_target');
    t.match(denied.json().error_description, /not allowed for this client/);

    const none = await buildTestApp(t, { ...ENV, RESOURCES: '' });
    const n = await machine(none);
    const missing = await token(none, 'grant_type=client_credentials', { authorization: basic(n.id, n.secret) });
    t.same(missing.json(), {
      error: 'invalid_target',
      error_description: 'no resource was requested and no default resource is configured',
    });
    const fallback = await buildTestApp(t, { ...ENV, DEFAULT_RESOURCE: 'https://mcp.example.com/mcp' });
    const f = await machine(fallback);
    const viaDefault = await token(fallback, 'grant_type=client_credentials', { authorization: basic(f.id, f.secret) });
    t.equal(
      (await verify(fallback, viaDefault.json().access_token)).payload.aud,
      'https://mcp.example.com/mcp',
      'DEFAULT_RESOURCE',
    );
  },
);

t.test('tokens for every signing algorithm verify against the served JWKS', async (t) => {
  for (const alg of ['ES256', 'RS256', 'PS256', 'EdDSA']) {
    // A schema of its own, so this algorithm's key is the first one generated there.
    const config = testConfig({
      ...ENV,
      SIGNING_ALG: alg,
      DATABASE_SCHEMA: `alg_${alg.toLowerCase()}_${randomBytes(3).toString('hex')}`,
    });
    const database = await openDatabase(config);
    const app = await buildApp(config, { database });
    t.teardown(async () => {
      await app.close();
      await database.close();
    });
    const c = await machine(app);
    const res = await token(app, 'grant_type=client_credentials', { authorization: basic(c.id, c.secret) });
    t.equal(res.statusCode, 200, alg);
    const jwt = res.json().access_token as string;
    t.equal(decodeProtectedHeader(jwt).alg, alg);
    const { payload, protectedHeader } = await verify(app, jwt);
    t.equal(protectedHeader.typ, 'at+jwt', alg);
    t.equal(payload.client_id, c.id, alg);
  }
});

t.test('a forged or altered token does not verify against the JWKS', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app);
  const jwt = (await token(app, 'grant_type=client_credentials', { authorization: basic(c.id, c.secret) })).json()
    .access_token as string;
  const [h, p, s] = jwt.split('.');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
  const altered = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${s}`;
  await t.rejects(verify(app, altered), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`;
  await t.rejects(verify(app, none));
});

t.test('no malformed input produces a 500', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app);
  const auth = basic(c.id, c.secret);
  const bodies = [
    '',
    '=',
    '&&&',
    'grant_type',
    'grant_type=%',
    'grant_type=%E0%A4%A',
    'grant_type=client_credentials&resource=',
    'grant_type=client_credentials&resource=%00',
    'grant_type=client_credentials&scope=%00',
    `grant_type=client_credentials&resource=${'https%3A%2F%2Fa.example.com&resource='.repeat(40)}x`,
    'grant_type=client_credentials&client_id=a&client_id=b',
    'grant_type[]=x',
    '__proto__=x&constructor=y&grant_type=client_credentials',
  ];
  const headerSets: Array<Record<string, string>> = [
    { authorization: auth },
    { authorization: 'Basic' },
    { authorization: 'Basic ' },
    { authorization: 'Bearer abc' },
    { authorization: `Basic ${Buffer.from('\u0000:\u0000').toString('base64')}` },
    { authorization: `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}` },
    { authorization: `Basic ${Buffer.from('%zz:%zz').toString('base64')}` },
  ];
  for (const body of bodies) {
    for (const headers of headerSets) {
      const res = await token(app, body, headers);
      const label = `${JSON.stringify(body)} ${headers.authorization}: ${res.statusCode}`;
      t.ok(res.statusCode < 500, label);
      if (res.statusCode >= 400) t.type(res.json().error, 'string', label);
      // Only a well-formed client_credentials request with the right credentials may succeed.
      if (res.statusCode === 200)
        t.equal(headers.authorization, auth, `${label} succeeded only with valid credentials`);
    }
  }
  const weird = ['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=utf-16'];
  for (const type of weird) {
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': type, authorization: auth },
      payload: 'grant_type=client_credentials',
    });
    t.ok(res.statusCode < 500, `${type}: ${res.statusCode}`);
    if (!type.startsWith('application/x-www-form-urlencoded')) t.equal(res.statusCode, 415, `${type} is refused`);
  }
});

t.test(
  'error descriptions stay within the RFC 6749 §5.2 character set, even when they quote the request',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const c = await machine(app);
    const res = await token(
      app,
      `grant_type=client_credentials&resource=${encodeURIComponent('foo:<script>alert(1)</script>"é\\')}`,
      { authorization: basic(c.id, c.secret) },
    );
    t.equal(res.json().error, 'invalid_target');
    t.match(res.json().error_description, /^[\x20-\x21\x23-\x3B\x3D\x3F-\x5B\x5D-\x7E]*$/);
    const nul = await token(app, 'grant_type=client_credentials&scope=read%00', {
      authorization: basic(c.id, c.secret),
    });
    t.same(nul.json(), { error: 'invalid_request', error_description: 'parameters must not contain NUL characters' });
  },
);

t.test(
  'a self-registered client stored with client_credentials (before registration refused it) still gets no machine token',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const { client, secret } = await app.clientAdmin.create(
      { name: 'Legacy', grant_types: ['client_credentials'] },
      { source: 'registration' },
    );
    const res = await token(app, 'grant_type=client_credentials', { authorization: basic(client.client_id, secret!) });
    t.equal(res.statusCode, 400);
    t.same(res.json(), {
      error: 'unauthorized_client',
      error_description: 'self-registered clients may not use client_credentials',
    });
  },
);

t.test("tokens are issued at the app's clock, not the machine's", async (t) => {
  // An hour ahead: far enough that a token stamped with the machine's time would show.
  const clock = () => new Date(Date.now() + 3_600_000);
  const app = await buildApp(testConfig(ENV), { database: await testDatabase(), clock });
  t.teardown(() => app.close());
  await app.ready();
  const c = await machine(app);
  const res = await token(app, 'grant_type=client_credentials', { authorization: basic(c.id, c.secret) });
  t.equal(res.statusCode, 200, res.body);
  const claims = decodeJwt(res.json().access_token);
  t.ok(Math.abs(claims.iat! - clock().getTime() / 1000) < 5, 'iat comes from the clock');
  t.equal(claims.exp! - claims.iat!, 3600);
});
