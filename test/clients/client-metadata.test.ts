import t from 'tap';
import { DomainError } from '../../src/lib/errors.js';
import {
  ClientMetadataError,
  clientMetadataPolicy,
  redirectUriProblem,
  validateClientMetadata,
} from '../../src/oauth/client-metadata.js';
import { clientConfig } from '../fixtures/clients.js';

const policy = clientMetadataPolicy(clientConfig());
const web = { name: 'Web app', redirect_uris: ['https://app.example.com/callback'] };
const native = { name: 'Native', application_type: 'native', token_endpoint_auth_method: 'none' };

function errorOf(input: unknown, p = policy): ClientMetadataError {
  try {
    validateClientMetadata(input, p);
  } catch (err) {
    if (err instanceof ClientMetadataError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

t.test('defaults follow RFC 7591 §2 and the result is normalised', async (t) => {
  const m = validateClientMetadata({ ...web, name: '  Web app  ' }, policy);
  t.same(m, {
    name: 'Web app',
    redirect_uris: ['https://app.example.com/callback'],
    post_logout_redirect_uris: [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scopes: [],
    default_scopes: [],
    resources: [],
    application_type: 'web',
    client_uri: null,
    logo_uri: null,
    policy_uri: null,
    tos_uri: null,
    contacts: [],
    skip_consent: false,
    backchannel_logout_uri: null,
    backchannel_logout_session_required: false,
    dpop_bound_access_tokens: false,
    id_token_signed_response_alg: null,
    default_max_age: null,
    require_auth_time: false,
    jwks: null,
    jwks_uri: null,
    token_endpoint_auth_signing_alg: null,
    require_pushed_authorization_requests: false,
    security_profile: null,
  });
});

t.test('a full client is kept, duplicates dropped and resources canonicalised', async (t) => {
  const m = validateClientMetadata(
    {
      name: 'Full',
      redirect_uris: ['https://app.example.com/cb', 'https://app.example.com/cb', 'https://app.example.com/other?x=1'],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      scopes: ['read', 'write', 'read'],
      default_scopes: ['read'],
      resources: ['HTTPS://API.example.com:443/', 'https://mcp.example.com/mcp'],
      client_uri: 'https://app.example.com',
      logo_uri: 'https://app.example.com/logo.png',
      policy_uri: 'https://app.example.com/privacy',
      tos_uri: 'https://app.example.com/tos',
      contacts: ['ops@example.com'],
      skip_consent: true,
    },
    policy,
  );
  t.same(
    m.redirect_uris,
    ['https://app.example.com/cb', 'https://app.example.com/other?x=1'],
    'stored as given, duplicates dropped',
  );
  t.same(m.scopes, ['read', 'write']);
  t.same(m.resources, ['https://api.example.com', 'https://mcp.example.com/mcp'], 'canonical RESOURCES form');
  t.same(m.grant_types, ['authorization_code', 'refresh_token', 'client_credentials']);
  t.equal(m.skip_consent, true);
  t.equal(validateClientMetadata({ ...web, dpop_bound_access_tokens: true }, policy).dpop_bound_access_tokens, true);
});

t.test('native clients may use loopback http (any of the three hosts) and private-use schemes', async (t) => {
  const uris = [
    'http://127.0.0.1/callback',
    'http://127.0.0.1:53124/callback',
    'http://[::1]:8080/cb',
    'http://localhost:3000/cb',
    'com.example.app:/oauth2redirect',
    'com.example.app://callback',
    'https://app.example.com/native-cb',
  ];
  const m = validateClientMetadata({ ...native, redirect_uris: uris }, policy);
  t.same(m.redirect_uris, uris);
  t.equal(m.application_type, 'native');
});

t.test('every bad form names its field', async (t) => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['not an object', ['x'], 'metadata', /must be an object/],
    [
      'unknown field',
      { ...web, redirect_uri: 'https://x.example/cb' },
      'redirect_uri',
      /not a known client metadata field/,
    ],
    ['missing name', { redirect_uris: web.redirect_uris }, 'name', /required/],
    ['blank name', { ...web, name: '   ' }, 'name', /empty/],
    ['name not a string', { ...web, name: 42 }, 'name', /string/],
    ['name too long', { ...web, name: 'x'.repeat(201) }, 'name', /at most 200/],
    ['control character in name', { ...web, name: 'a\nb' }, 'name', /control/],
    ['redirect_uris not an array', { ...web, redirect_uris: 'https://app.example.com/cb' }, 'redirect_uris', /array/],
    ['relative redirect URI', { ...web, redirect_uris: ['/callback'] }, 'redirect_uris[0]', /absolute URI/],
    [
      'redirect URI with fragment',
      { ...web, redirect_uris: ['https://app.example.com/cb', 'https://app.example.com/cb#x'] },
      'redirect_uris[1]',
      /fragment/,
    ],
    [
      'redirect URI with an empty fragment',
      { ...web, redirect_uris: ['https://app.example.com/cb#'] },
      'redirect_uris[0]',
      /fragment/,
    ],
    [
      'redirect URI with credentials',
      { ...web, redirect_uris: ['https://u:p@app.example.com/cb'] },
      'redirect_uris[0]',
      /credentials/,
    ],
    [
      'redirect URI with surrounding space',
      { ...web, redirect_uris: [' https://app.example.com/cb'] },
      'redirect_uris[0]',
      /whitespace/,
    ],
    [
      'http on a public host',
      { ...web, redirect_uris: ['http://app.example.com/cb'] },
      'redirect_uris[0]',
      /must use https/,
    ],
    [
      'http on a public host, native',
      { ...native, redirect_uris: ['http://app.example.com/cb'] },
      'redirect_uris[0]',
      /must use https/,
    ],
    [
      'http on another 127/8 address',
      { ...native, redirect_uris: ['http://127.0.0.2/cb'] },
      'redirect_uris[0]',
      /must use https/,
    ],
    [
      'http on a localhost subdomain (whether it stays off DNS depends on the resolver)',
      { ...native, redirect_uris: ['http://app.localhost/cb'] },
      'redirect_uris[0]',
      /must use https/,
    ],
    [
      'http on a public name that only looks loopback',
      { ...native, redirect_uris: ['http://127.0.0.1.nip.io/cb'] },
      'redirect_uris[0]',
      /must use https/,
    ],
    [
      'private-use scheme for a web client',
      { ...web, redirect_uris: ['com.example.app:/cb'] },
      'redirect_uris[0]',
      /only for native clients/,
    ],
    ['scheme without a dot', { ...native, redirect_uris: ['myapp:/cb'] }, 'redirect_uris[0]', /reverse-domain/],
    ['javascript: scheme', { ...native, redirect_uris: ['javascript:alert(1)'] }, 'redirect_uris[0]', /reverse-domain/],
    [
      'bad post-logout URI',
      { ...web, post_logout_redirect_uris: ['http://app.example.com/bye'] },
      'post_logout_redirect_uris[0]',
      /https/,
    ],
    ['no grant types', { ...web, grant_types: [] }, 'grant_types', /at least one/],
    [
      'implicit grant',
      { ...web, grant_types: ['authorization_code', 'implicit'] },
      'grant_types[1]',
      /one of authorization_code, refresh_token, client_credentials/,
    ],
    ['password grant', { ...web, grant_types: ['password'] }, 'grant_types[0]', /one of/],
    ['refresh_token alone', { ...web, grant_types: ['refresh_token'] }, 'grant_types', /requires authorization_code/],
    [
      'client_credentials for a public client',
      { ...native, grant_types: ['client_credentials'] },
      'grant_types',
      /confidential client/,
    ],
    ['token response type', { ...web, response_types: ['token'] }, 'response_types[0]', /only "code"/],
    [
      'code response type without authorization_code',
      { name: 'M', grant_types: ['client_credentials'], response_types: ['code'] },
      'response_types',
      /must be empty/,
    ],
    [
      'no code response type with authorization_code',
      { ...web, response_types: [] },
      'response_types',
      /must be \["code"\]/,
    ],
    ['authorization_code without redirect URIs', { name: 'x' }, 'redirect_uris', /at least one redirect URI/],
    [
      'unknown auth method',
      { ...web, token_endpoint_auth_method: 'tls_client_auth' },
      'token_endpoint_auth_method',
      /one of client_secret_basic, client_secret_post, private_key_jwt, none/,
    ],
    ['unknown application type', { ...web, application_type: 'spa' }, 'application_type', /one of web, native/],
    ['scope with a space', { ...web, scopes: ['read write'] }, 'scopes[0]', /scope-token/],
    ['scope with a quote', { ...web, scopes: ['read', 'a"b'] }, 'scopes[1]', /scope-token/],
    ['scope with a backslash', { ...web, scopes: ['a\\b'] }, 'scopes[0]', /scope-token/],
    [
      'scope outside the catalogue',
      { ...web, scopes: ['read', 'delete'] },
      'scopes[1]',
      /"delete" is not in the scope catalogue/,
    ],
    ['scopes not an array', { ...web, scopes: 'read' }, 'scopes', /array/],
    [
      'default scope not among the scopes',
      { ...web, scopes: ['read'], default_scopes: ['write'] },
      'default_scopes[0]',
      /not one of the client's scopes/,
    ],
    ['default scope outside the catalogue', { ...web, default_scopes: ['nope'] }, 'default_scopes[0]', /catalogue/],
    [
      'resource not configured',
      { ...web, resources: ['https://api.example.com', 'https://other.example.com'] },
      'resources[1]',
      /not one of the configured RESOURCES/,
    ],
    ['relative resource', { ...web, resources: ['api'] }, 'resources[0]', /absolute URI/],
    ['resource with a fragment', { ...web, resources: ['https://api.example.com#x'] }, 'resources[0]', /fragment/],
    ['http client_uri', { ...web, client_uri: 'http://app.example.com' }, 'client_uri', /https/],
    ['relative logo_uri', { ...web, logo_uri: '/logo.png' }, 'logo_uri', /absolute URI/],
    ['policy_uri not a string', { ...web, policy_uri: 7 }, 'policy_uri', /string/],
    ['tos_uri with a fragment', { ...web, tos_uri: 'https://app.example.com/tos#top' }, 'tos_uri', /fragment/],
    ['contact not a string', { ...web, contacts: ['a@example.com', 1] }, 'contacts[1]', /string/],
    ['skip_consent not boolean', { ...web, skip_consent: 'yes' }, 'skip_consent', /true or false/],
    [
      'dpop_bound_access_tokens not boolean',
      { ...web, dpop_bound_access_tokens: 'yes' },
      'dpop_bound_access_tokens',
      /true or false/,
    ],
    [
      'too many redirect URIs',
      { ...web, redirect_uris: Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`) },
      'redirect_uris',
      /at most 20/,
    ],
  ];
  for (const [label, input, field, reason] of cases) {
    const err = errorOf(input);
    t.equal(err.field, field, `${label}: names ${field}`);
    t.match(err.reason, reason, `${label}: says why`);
    t.equal(err.message, `${err.field}: ${err.reason}`);
  }
});

t.test('errors are invalid_input DomainErrors naming the field that decides the RFC 7591 §3.2.2 code', async (t) => {
  // The edge's mapping table answers redirect_uris… with invalid_redirect_uri, any other field with
  // invalid_client_metadata (test/registration checks the answers).
  const redirect = errorOf({ ...web, redirect_uris: ['http://x.example/cb'] });
  t.ok(redirect instanceof DomainError);
  t.match(redirect, { code: 'invalid_input', field: 'redirect_uris[0]' });
  t.match(errorOf({ ...web, redirect_uris: [] }), { code: 'invalid_input', field: 'redirect_uris' });
  t.match(errorOf({ ...web, post_logout_redirect_uris: ['nope'] }), {
    code: 'invalid_input',
    field: 'post_logout_redirect_uris[0]',
  });
  t.match(errorOf({ ...web, scopes: ['nope'] }), { code: 'invalid_input', field: 'scopes[0]' });
});

t.test('with ENFORCE_SCOPES off any well-formed scope is allowed, and syntax is still checked', async (t) => {
  const open = clientMetadataPolicy(clientConfig({ ENFORCE_SCOPES: 'false' }));
  t.same(validateClientMetadata({ ...web, scopes: ['anything', 'mcp:tools'] }, open).scopes, ['anything', 'mcp:tools']);
  t.equal(errorOf({ ...web, scopes: ['bad scope'] }, open).field, 'scopes[0]');
});

t.test('with no RESOURCES configured a client can name none', async (t) => {
  const none = clientMetadataPolicy(clientConfig({ RESOURCES: '' }));
  t.equal(errorOf({ ...web, resources: ['https://api.example.com'] }, none).field, 'resources[0]');
  t.same(validateClientMetadata(web, none).resources, []);
});

t.test('null optional fields mean the default', async (t) => {
  const m = validateClientMetadata({ ...web, client_uri: null, scopes: null, application_type: null }, policy);
  t.equal(m.client_uri, null);
  t.same(m.scopes, []);
  t.equal(m.application_type, 'web');
});

t.test('redirectUriProblem is usable on its own', async (t) => {
  t.equal(redirectUriProblem('https://a.example/cb', 'web'), null);
  t.equal(redirectUriProblem('http://[::1]/cb', 'native'), null);
  t.match(redirectUriProblem('http://[::1]/cb', 'web'), /native/);
});

t.test('http loopback for a web client: only outside production (webHttpLoopback), never by default', async (t) => {
  const loopbackWeb = { ...web, redirect_uris: ['http://127.0.0.1:8080/cb'] };
  const strict = { ...policy, webHttpLoopback: false };
  t.same(errorOf(loopbackWeb, strict).field, 'redirect_uris[0]');
  t.match(errorOf(loopbackWeb, strict).reason, /only for native clients/);
  t.match(redirectUriProblem('http://localhost:3000/cb', 'web'), /only for native clients/, 'the default is strict');
  t.equal(policy.webHttpLoopback, true, 'NODE_ENV=test is not production');
  t.same(validateClientMetadata(loopbackWeb, policy).redirect_uris, ['http://127.0.0.1:8080/cb']);
  t.match(errorOf({ ...web, redirect_uris: ['http://app.example.com/cb'] }).reason, /must use https/, 'loopback only');
});
