import t from 'tap';
import { buildTestApp } from './helper.js';

t.test('RFC 8414 metadata reflects the configuration exactly', async (t) => {
  const app = await buildTestApp(t, {
    ISSUER: 'HTTPS://Auth.Example.COM:443/',
    SCOPES: '{"read":"Read your data","write":"Change your data"}',
  });
  const res = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  t.equal(res.headers['access-control-allow-origin'], '*', 'CORS open');
  const doc = res.json();
  t.equal(doc.issuer, 'https://auth.example.com', 'issuer is the canonical ISSUER');
  t.equal(doc.token_endpoint, 'https://auth.example.com/token');
  t.equal(doc.jwks_uri, 'https://auth.example.com/.well-known/jwks.json');
  t.same(doc.scopes_supported, ['read', 'write']);
  t.same(doc.response_types_supported, ['code']);
  t.same(doc.code_challenge_methods_supported, ['S256'], 'PKCE S256 only');
  t.equal(doc.authorization_response_iss_parameter_supported, true);
  t.ok(doc.grant_types_supported.includes('client_credentials'));
  t.same(
    doc.token_endpoint_auth_methods_supported.filter((m: string) => m.startsWith('client_secret')),
    ['client_secret_basic', 'client_secret_post'],
  );
  t.equal(doc.introspection_endpoint, 'https://auth.example.com/introspect', 'RFC 7662 introspection');
  t.same(
    doc.introspection_endpoint_auth_methods_supported,
    ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    'confidential clients only',
  );
  for (const off of ['registration_endpoint', 'userinfo_endpoint'])
    t.notOk(off in doc, `${off} is not advertised while off`);
  for (const [key, value] of Object.entries(doc)) {
    if (key.endsWith('_endpoint') || key === 'jwks_uri')
      t.ok(String(value).startsWith('https://auth.example.com/'), `${key} is under the issuer`);
  }
});

t.test('registration_endpoint is advertised exactly when DCR_ENABLED (RFC 8414 §2)', async (t) => {
  const on = await buildTestApp(t, { ISSUER: 'https://auth.example.com', DCR_ENABLED: 'true' });
  const doc = (await on.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  t.equal(doc.registration_endpoint, 'https://auth.example.com/register');
  const oidc = (await on.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
  t.equal(oidc.registration_endpoint, 'https://auth.example.com/register', 'OIDC discovery too');
  const off = await buildTestApp(t, { ISSUER: 'https://auth.example.com', DCR_ENABLED: 'false' });
  t.notOk(
    'registration_endpoint' in
      (await off.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json(),
  );
  t.notOk(
    'registration_endpoint' in (await off.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json(),
  );
});

t.test('an empty scope catalogue is not advertised', async (t) => {
  const app = await buildTestApp(t, { SCOPES: '' });
  const doc = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  t.notOk('scopes_supported' in doc);
});

t.test('OpenID configuration is the same document plus OIDC fields', async (t) => {
  const app = await buildTestApp(t, { SIGNING_ALG: 'PS256' });
  const oauth = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json();
  const res = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' });
  t.equal(res.statusCode, 200);
  const oidc = res.json();
  t.match(oidc, oauth, 'every RFC 8414 field is the same');
  t.same(oidc.subject_types_supported, ['public']);
  t.same(oidc.id_token_signing_alg_values_supported, ['PS256']);
});

t.test('an issuer with a path also serves the RFC 8414 §3.1 path-inserted location', async (t) => {
  const app = await buildTestApp(t, { ISSUER: 'https://example.com/tenant/a' });
  const inserted = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server/tenant/a' });
  t.equal(inserted.statusCode, 200);
  t.equal(inserted.json().issuer, 'https://example.com/tenant/a');
  t.equal(inserted.json().token_endpoint, 'https://example.com/tenant/a/token');
  const oidc = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration/tenant/a' });
  t.equal(oidc.statusCode, 200);
  const other = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server/tenant/b' });
  t.equal(other.statusCode, 404, 'another tenant path is not this issuer');
});

t.test('CORS preflight is answered on metadata and token, never on other paths', async (t) => {
  const app = await buildTestApp(t);
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/token',
    headers: {
      origin: 'https://inspector.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });
  t.equal(preflight.statusCode, 204);
  t.equal(preflight.headers['access-control-allow-origin'], '*');
  t.match(preflight.headers['access-control-allow-headers'], /Authorization/);
  const health = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://evil.example' } });
  t.notOk(health.headers['access-control-allow-origin'], 'no CORS outside the listed endpoints');
});
