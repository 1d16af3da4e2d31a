import t from 'tap';
import { clientMetadataPolicy } from '../../src/oauth/client-metadata.js';
import {
  cacheLifetime,
  clientIdUrlProblem,
  ClientIdDocumentError,
  clientMetadataFromDocument,
} from '../../src/oauth/client-id-document.js';
import { testConfig } from '../helper.js';
import { clientIdDocument } from './document-server.js';

const ID = 'https://app.example.com/oauth/client.json';
const policy = clientMetadataPolicy(testConfig({ SCOPES: 'read write', RESOURCES: 'https://mcp.example.com/mcp' }));

function problem(body: unknown, clientId = ID): string {
  try {
    clientMetadataFromDocument(clientId, typeof body === 'string' ? body : JSON.stringify(body), policy);
  } catch (err) {
    if (err instanceof ClientIdDocumentError) return err.message;
    throw err;
  }
  throw new Error('the document was accepted');
}

t.test('client identifier URLs follow draft section 3', async (t) => {
  for (const ok of [
    ID,
    'https://app.example.com:8443/c',
    'https://app.example.com/c?v=1',
    'https://127.0.0.1:3000/client.json',
  ])
    t.equal(clientIdUrlProblem(ok), null, ok);
  const refused: Array<[string, RegExp]> = [
    ['http://app.example.com/client.json', /https scheme/],
    ['https://app.example.com', /must contain a path/],
    ['https://app.example.com/', /must contain a path/],
    ['https://app.example.com?x=1', /must contain a path/],
    ['https://user:pw@app.example.com/c', /user name or password/],
    ['https://user@app.example.com/c', /user name or password/],
    ['https://app.example.com/c#frag', /fragment/],
    ['https://app.example.com/a/../c', /"\." or "\.\."/],
    ['https://app.example.com/./c', /"\." or "\.\."/],
    ['https://app.example.com/a/%2E%2e/c', /"\." or "\.\."/],
    ['https://App.Example.com/c', /normalised form \(https:\/\/app\.example\.com\/c\)/],
    ['https://app.example.com:443/c', /normalised form/],
    ['https://app.example.com/a b', /normalised form/],
    ['https://exa mple.com/c', /not a valid URL/],
  ];
  for (const [id, reason] of refused) t.match(clientIdUrlProblem(id), reason, id);
});

t.test('a valid document maps onto client metadata like a registration', async (t) => {
  const metadata = clientMetadataFromDocument(
    ID,
    JSON.stringify(
      clientIdDocument(ID, {
        scope: 'read',
        logo_uri: 'https://app.example.com/logo.png',
        jwks_uri: 'https://app.example.com/jwks',
        software_id: 'x',
      }),
    ),
    policy,
  );
  t.equal(metadata.name, 'Example MCP Client');
  t.equal(metadata.token_endpoint_auth_method, 'none');
  t.equal(metadata.application_type, 'native', 'loopback redirect URIs make it a native app (RFC 8252)');
  t.same(metadata.scopes, ['read']);
  t.same(metadata.redirect_uris, ['http://127.0.0.1:53123/callback']);
  t.equal(metadata.skip_consent, false);
  const bare = clientMetadataFromDocument(
    ID,
    JSON.stringify({ client_id: ID, redirect_uris: ['https://app.example.com/cb'] }),
    policy,
  );
  t.equal(bare.name, 'app.example.com', 'no client_name: the client_id host names it');
  t.equal(bare.token_endpoint_auth_method, 'none', 'absent token_endpoint_auth_method means none');
  t.same(bare.grant_types, ['authorization_code']);
  t.equal(bare.application_type, 'web');
});

t.test('invalid documents are refused with the reason (draft sections 4, 4.1)', async (t) => {
  t.match(problem('not json'), /not valid JSON/);
  t.match(problem('[1]'), /not a JSON object/);
  t.match(problem('null'), /not a JSON object/);
  t.match(problem({ redirect_uris: ['https://app.example.com/cb'] }), /has no client_id/);
  t.match(
    problem(clientIdDocument('https://app.example.com/other.json')),
    /client_id in the document does not equal the URL/,
  );
  t.match(problem(clientIdDocument(`${ID}/`)), /does not equal/, 'string equality, not equivalence');
  t.match(
    problem(clientIdDocument(ID, { token_endpoint_auth_method: 'client_secret_basic' })),
    /client_secret_basic uses a shared secret/,
  );
  t.match(
    problem(clientIdDocument(ID, { token_endpoint_auth_method: 'client_secret_post' })),
    /client_secret_post uses a shared secret/,
  );
  t.match(
    problem(clientIdDocument(ID, { token_endpoint_auth_method: 'client_secret_jwt' })),
    /client_secret_jwt uses a shared secret/,
  );
  // private_key_jwt is allowed (the draft forbids only shared secrets), but never without the client's keys.
  t.match(
    problem(clientIdDocument(ID, { token_endpoint_auth_method: 'private_key_jwt' })),
    /private_key_jwt needs the public keys/,
  );
  t.match(
    problem(clientIdDocument(ID, { token_endpoint_auth_method: 'tls_client_auth' })),
    /must be "none" or "private_key_jwt"/,
  );
  t.match(problem(clientIdDocument(ID, { client_secret: 'abc' })), /must not contain client_secret/);
  t.match(problem(clientIdDocument(ID, { client_secret_expires_at: 0 })), /must not contain client_secret_expires_at/);
  t.match(
    problem(clientIdDocument(ID, { jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'secret' }] } })),
    /must not contain private or symmetric key material/,
  );
  t.match(
    problem(clientIdDocument(ID, { jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } })),
    /must not contain private or symmetric key material/,
  );
  t.equal(
    clientMetadataFromDocument(
      ID,
      JSON.stringify(clientIdDocument(ID, { jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] } })),
      policy,
    ).name,
    'Example MCP Client',
    'public keys are fine (and unused)',
  );
  const noRedirects = clientIdDocument(ID);
  delete noRedirects.redirect_uris;
  t.match(problem(noRedirects), /has no redirect_uris/);
  t.match(problem(clientIdDocument(ID, { redirect_uris: [] })), /redirect_uris: at least one redirect URI is required/);
  t.match(problem(clientIdDocument(ID, { redirect_uris: ['https://app.example.com/cb#x'] })), /redirect_uris\[0\]/);
  t.match(problem(clientIdDocument(ID, { scope: 'read admin' })), /scope: "admin" is not in the scope catalogue/);
  t.match(problem(clientIdDocument(ID, { scope: 7 })), /scope: must be a string/);
  t.match(
    problem(clientIdDocument(ID, { grant_types: ['client_credentials'], response_types: [] })),
    /client_credentials is not available to self-registered clients/,
  );
  t.match(problem(clientIdDocument(ID, { client_name: '' })), /client_name: must not be empty/);
});

t.test('cache lifetime follows the HTTP cache headers within the bounds', async (t) => {
  const bounds = { min: 60, max: 86400, default: 300 };
  const now = Date.parse('2026-11-22T12:00:00Z');
  t.equal(cacheLifetime({}, bounds, now), 300, 'no header: the default');
  t.equal(cacheLifetime({ 'cache-control': 'public, max-age=3600' }, bounds, now), 3600);
  t.equal(cacheLifetime({ 'cache-control': 'max-age="120"' }, bounds, now), 120);
  t.equal(cacheLifetime({ 'cache-control': 'max-age=5' }, bounds, now), 60, 'clamped up to the minimum');
  t.equal(cacheLifetime({ 'cache-control': 'max-age=0' }, bounds, now), 60);
  t.equal(cacheLifetime({ 'cache-control': 'max-age=99999999' }, bounds, now), 86400, 'clamped down to the maximum');
  t.equal(cacheLifetime({ 'cache-control': 'no-store' }, bounds, now), 0, 'no-store: not cached');
  t.equal(cacheLifetime({ 'cache-control': 'max-age=600, No-Cache' }, bounds, now), 0, 'no-cache: not cached');
  t.equal(cacheLifetime({ expires: 'Sun, 22 Nov 2026 13:00:00 GMT' }, bounds, now), 3600, 'Expires against now');
  t.equal(
    cacheLifetime({ expires: 'Sun, 22 Nov 2026 13:00:00 GMT', date: 'Sun, 22 Nov 2026 12:30:00 GMT' }, bounds, now),
    1800,
    'Expires against Date',
  );
  t.equal(cacheLifetime({ expires: '0' }, bounds, now), 60, 'an invalid Expires is already expired: the minimum');
  t.equal(
    cacheLifetime({ 'cache-control': 'max-age=7200', expires: 'Sun, 22 Nov 2026 12:01:00 GMT' }, bounds, now),
    7200,
    'max-age wins over Expires',
  );
});
