import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { SignJWT, generateKeyPair } from 'jose';
import t from 'tap';
import { challenge, startResourceServer } from '../../examples/resource-server/app.js';
import { basic } from '../fixtures/clients.js';
import { buildTestApp } from '../helper.js';
import { freePort } from './support.js';

const OTHER_RESOURCE = 'https://other.example.com/api';

// A real Gatehouse listening on 127.0.0.1, so the resource server fetches its JWKS over HTTP. Its issuer
// names its port, so the port is picked first; the API's resource URL goes into its RESOURCES.
const gatehousePort = await freePort();
const issuer = `http://127.0.0.1:${gatehousePort}`;
const server = await startResourceServer({ issuer, port: 0 });
t.teardown(() => server.close());
const gatehouse: FastifyInstance = await buildTestApp(t, {
  ISSUER: issuer,
  SCOPES: '{"read":"Read","write":"Write"}',
  RESOURCES: `${server.resource} ${OTHER_RESOURCE}`,
});
await gatehouse.listen({ host: '127.0.0.1', port: gatehousePort });
const metadataUrl = `${server.url}/.well-known/oauth-protected-resource/mcp`;
const ALGS = 'ES256 ES384 EdDSA Ed25519 RS256 PS256';
/** With no credentials, both schemes the resource accepts are offered (RFC 9449 §7.2, RFC 9110 §11.6.1). */
const bothChallenges = (url: string) =>
  `Bearer resource_metadata="${url}", DPoP algs="${ALGS}", resource_metadata="${url}"`;

const { client, secret } = await gatehouse.clientAdmin.create({
  name: 'Machine',
  grant_types: ['client_credentials'],
  scopes: ['read', 'write'],
});

async function clientCredentials(scope: string, resource = server.resource): Promise<string> {
  const res = await gatehouse.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, secret!) },
    payload: new URLSearchParams({ grant_type: 'client_credentials', scope, resource }).toString(),
  });
  if (res.statusCode !== 200) throw new Error(res.body);
  return res.json().access_token;
}

/** A JWT signed with Gatehouse's own active key, for claims Gatehouse would never issue. */
async function signedByGatehouse(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const signer = gatehouse.keys.current();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: issuer,
    sub: 'someone',
    aud: server.resource,
    client_id: 'c',
    scope: 'read',
    iat: now,
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt', ...header })
    .sign(signer.key);
}

function call(token?: string, init: RequestInit = {}, url = `${server.resource}`) {
  return fetch(url, {
    ...init,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(init.headers as Record<string, string>),
    },
  });
}

t.test('the resource identifier and metadata URL follow from where it listens', async (t) => {
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.equal(server.resource, `${server.url}/mcp`);
});

t.test('no token: 401 with the resource_metadata challenges only', async (t) => {
  const res = await call();
  t.equal(res.status, 401);
  t.equal(
    res.headers.get('www-authenticate'),
    bothChallenges(metadataUrl),
    'RFC 6750 §3.1: no error code without a token; RFC 9728 §5.1; RFC 9449 §7.1 algs',
  );
  t.equal(res.headers.get('access-control-allow-origin'), '*');
  t.match(
    res.headers.get('access-control-expose-headers'),
    /WWW-Authenticate/i,
    'a browser client can read the challenge',
  );
  const otherScheme = await call(undefined, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  t.equal(otherScheme.status, 401);
  t.equal(
    otherScheme.headers.get('www-authenticate'),
    bothChallenges(metadataUrl),
    'another scheme counts as no token',
  );
  const post = await call(undefined, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
  });
  t.equal(post.status, 401, 'POST too');
});

t.test('a bad token: 401 invalid_token', async (t) => {
  const foreign = await generateKeyPair('ES256');
  const signer = gatehouse.keys.current();
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'not-a-jwt', /malformed/],
    ['a token for another resource', await clientCredentials('read', OTHER_RESOURCE), /not for this resource/],
    ['expired beyond the tolerance', await signedByGatehouse({ iat: now - 600, exp: now - 60 }), /expired/],
    ['another issuer', await signedByGatehouse({ iss: 'http://evil.example' }), /issuer/],
    ['not an access token (typ JWT, e.g. an ID token)', await signedByGatehouse({}, { typ: 'JWT' }), /typ/],
    [
      'signed by a foreign key under Gatehouse’s kid',
      await new SignJWT({ iss: issuer, sub: 'x', aud: server.resource, client_id: 'c', scope: 'read' })
        .setProtectedHeader({ alg: 'ES256', kid: signer.kid, typ: 'at+jwt' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(foreign.privateKey),
      /signature/,
    ],
    [
      'HS256 (algorithm confusion)',
      await new SignJWT({ iss: issuer, sub: 'x', aud: server.resource, client_id: 'c', scope: 'read' })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('k'.repeat(32))),
      /algorithm/,
    ],
    [
      'an unknown kid',
      await new SignJWT({ iss: issuer, sub: 'x', aud: server.resource, client_id: 'c', scope: 'read' })
        .setProtectedHeader({ alg: 'ES256', kid: 'unknown-kid', typ: 'at+jwt' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(foreign.privateKey),
      /no signing key/,
    ],
  ];
  for (const [name, token, description] of cases) {
    const res = await call(token);
    t.equal(res.status, 401, name);
    const challenge = res.headers.get('www-authenticate') ?? '';
    t.match(
      challenge,
      /^Bearer error="invalid_token", error_description="[^"\\]+", resource_metadata="([^"]+)"$/,
      `${name}: challenge shape`,
    );
    t.ok(challenge.endsWith(`resource_metadata="${metadataUrl}"`), `${name}: names the metadata`);
    const body = (await res.json()) as { error: string; error_description: string };
    t.equal(body.error, 'invalid_token', name);
    t.match(body.error_description, description, `${name}: says why`);
  }
});

t.test('a valid token: 200 with who and what, GET and POST; without the scope: 403', async (t) => {
  const token = await clientCredentials('read write');
  const res = await call(token);
  t.equal(res.status, 200);
  t.same(await res.json(), {
    sub: client.client_id,
    client_id: client.client_id,
    scope: 'read write',
    aud: server.resource,
  });
  const post = await call(token, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
  });
  t.equal(post.status, 200, 'POST');
  const lower = await call(undefined, { headers: { authorization: `bearer ${token}` } });
  t.equal(lower.status, 200, 'the auth scheme is case-insensitive');

  const writeOnly = await clientCredentials('write');
  const denied = await call(writeOnly);
  t.equal(denied.status, 403);
  t.equal(
    denied.headers.get('www-authenticate'),
    `Bearer error="insufficient_scope", scope="read", resource_metadata="${metadataUrl}"`,
  );
  t.equal(((await denied.json()) as { error: string }).error, 'insufficient_scope');

  const tolerated = await call(
    await signedByGatehouse({ iat: Math.floor(Date.now() / 1000) - 300, exp: Math.floor(Date.now() / 1000) - 10 }),
  );
  t.equal(tolerated.status, 200, 'expired by less than the clock tolerance');
});

t.test('RFC 9728 metadata at both locations, with CORS', async (t) => {
  const expected = {
    resource: server.resource,
    authorization_servers: [issuer],
    scopes_supported: ['read'],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: ALGS.split(' '),
  };
  for (const url of [metadataUrl, `${server.url}/.well-known/oauth-protected-resource`]) {
    const res = await fetch(url, { headers: { origin: 'http://localhost:6274' } });
    t.equal(res.status, 200, url);
    t.match(res.headers.get('content-type'), /^application\/json/);
    t.equal(res.headers.get('access-control-allow-origin'), '*');
    t.same(await res.json(), expected, url);
  }
  const preflight = await fetch(server.resource, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://localhost:6274',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    },
  });
  t.equal(preflight.status, 204, 'preflight');
  t.equal(preflight.headers.get('access-control-allow-origin'), '*');
  t.match(preflight.headers.get('access-control-allow-headers'), /Authorization/i);
  t.notOk(preflight.headers.get('access-control-allow-credentials'), 'no credentials');
});

t.test('the keys cannot be fetched: 503, not invalid_token', async (t) => {
  const deadPort = await freePort();
  const orphan = await startResourceServer({
    issuer,
    jwksUri: `http://127.0.0.1:${deadPort}/.well-known/jwks.json`,
    port: 0,
    resource: server.resource,
  });
  t.teardown(() => orphan.close());
  const res = await fetch(`${orphan.url}/mcp`, {
    headers: { authorization: `Bearer ${await clientCredentials('read')}` },
  });
  t.equal(res.status, 503);
  t.equal(res.headers.get('retry-after'), '5');
  t.equal(((await res.json()) as { error: string }).error, 'temporarily_unavailable');
});

/** A stand-in for Gatehouse's JWKS endpoint (or the load balancer in front of it) that answers as told. */
async function jwksStub(): Promise<{
  url: string;
  answer: (status: number, body: string) => void;
  close: () => Promise<void>;
}> {
  let reply = { status: 200, body: '' };
  const stub = createServer((_req, res) => {
    res
      .writeHead(reply.status, { 'content-type': reply.status === 200 ? 'application/json' : 'text/html' })
      .end(reply.body);
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const { port } = stub.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    answer: (status, body) => void (reply = { status, body }),
    close: () => new Promise<void>((resolve) => stub.close(() => resolve())),
  };
}

t.test('the JWKS endpoint answers badly: 503 temporarily_unavailable, never invalid_token', async (t) => {
  const stub = await jwksStub();
  t.teardown(() => stub.close());
  const behind = await startResourceServer({ issuer, jwksUri: stub.url, port: 0, resource: server.resource });
  t.teardown(() => behind.close());
  const token = await clientCredentials('read');
  const gatehouseJwks = (await gatehouse.inject({ method: 'GET', url: '/.well-known/jwks.json' })).body;

  const cases: Array<[string, number, string]> = [
    ['503 from an unhealthy Gatehouse', 503, '{"error":"temporarily_unavailable"}'],
    ['502 from a load balancer, HTML body', 502, '<html><body>502 Bad Gateway</body></html>'],
    ['200 with a body that is not JSON', 200, '<html>maintenance</html>'],
    ['200 with JSON that is not a JWK Set', 200, '{"keys":"none"}'],
  ];
  for (const [name, status, body] of cases) {
    stub.answer(status, body);
    const res = await fetch(`${behind.url}/mcp`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(res.status, 503, name);
    t.equal(res.headers.get('retry-after'), '5', `${name}: Retry-After`);
    t.notMatch(res.headers.get('www-authenticate') ?? '', /invalid_token/, `${name}: the client keeps its token`);
    t.equal(((await res.json()) as { error: string }).error, 'temporarily_unavailable', name);
  }

  // Gatehouse is back: a failed fetch is not cached, the next request fetches again.
  stub.answer(200, gatehouseJwks);
  const ok = await fetch(`${behind.url}/mcp`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(ok.status, 200, 'recovers once the keys can be fetched');
  // With a good JWKS in hand, a kid that is not in it is the token's fault.
  const foreign = await generateKeyPair('ES256');
  const unknownKid = await new SignJWT({ iss: issuer, sub: 'x', aud: server.resource, client_id: 'c', scope: 'read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'not-in-the-jwks', typ: 'at+jwt' })
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(foreign.privateKey);
  const bad = await fetch(`${behind.url}/mcp`, { headers: { authorization: `Bearer ${unknownKid}` } });
  t.equal(bad.status, 401, 'an unknown kid against a good JWKS');
  t.match(bad.headers.get('www-authenticate'), /^Bearer error="invalid_token"/);
});

t.test(
  'challenge values are quoted-strings: `"` and `\\` escaped, control characters refused (RFC 9110 §5.6.4)',
  async (t) => {
    t.equal(
      challenge([['resource_metadata', 'https://api.example.com/.well-known/oauth-protected-resource']]),
      'Bearer resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"',
    );
    t.equal(
      challenge([
        ['error', 'invalid_token'],
        ['error_description', 'say "hi" \\ bye'],
      ]),
      'Bearer error="invalid_token", error_description="say \\"hi\\" \\\\ bye"',
    );
    // A value that closes the quote early cannot smuggle in a parameter of its own.
    const smuggled = challenge([['scope', 'read", error="insufficient_scope']]);
    t.equal(smuggled, 'Bearer scope="read\\", error=\\"insufficient_scope"');
    t.throws(() => challenge([['error_description', 'line\r\nSet-Cookie: x=1']]), TypeError, 'CR LF refused');
    t.throws(() => challenge([['error_description', 'nul\u0000']]), TypeError, 'NUL refused');
    t.throws(() => challenge([['error_description', 'snow \u2603']]), TypeError, 'beyond Latin-1 refused');
    t.equal(challenge([['x', 'tab\tok']]), 'Bearer x="tab\tok"', 'HTAB is qdtext');
  },
);

t.test('options: another path, resource, scope', async (t) => {
  const custom = await startResourceServer({ issuer, path: '/api', requiredScope: 'write', resource: OTHER_RESOURCE });
  t.teardown(() => custom.close());
  t.equal(custom.resource, OTHER_RESOURCE);
  const meta = await fetch(`${custom.url}/.well-known/oauth-protected-resource/api`);
  t.equal(meta.status, 200);
  t.same(((await meta.json()) as { scopes_supported: string[] }).scopes_supported, ['write']);
  const res = await fetch(`${custom.url}/api`);
  t.equal(
    res.headers.get('www-authenticate'),
    bothChallenges('https://other.example.com/.well-known/oauth-protected-resource/api'),
    'derived from the resource identifier (RFC 9728 §3.1)',
  );
  const ok = await fetch(`${custom.url}/api`, {
    headers: { authorization: `Bearer ${await clientCredentials('write', OTHER_RESOURCE)}` },
  });
  t.equal(ok.status, 200);
});
