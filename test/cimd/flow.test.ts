import { type AddressInfo, createServer } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { findClientById } from '../../src/repositories/client.repository.js';
import { answerLoginRequest, HANDSHAKE_ENV } from '../fixtures/host.js';
import { Browser, pkce } from '../fixtures/registration.js';
import { buildTestApp } from '../helper.js';
import { CIMD_ENV, type DocumentServer, clientIdDocument, startDocumentServer } from './document-server.js';
import { ISSUER } from '../kit/issuer.js';

const REDIRECT = 'http://127.0.0.1:53123/callback';
const RESOURCE = 'https://mcp.example.com/mcp';
const ENV: Record<string, string> = {
  ...HANDSHAKE_ENV,
  ...CIMD_ENV,
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: RESOURCE,
};

function authorizeUrl(clientId: string, challenge = pkce().challenge, extra: Record<string, string> = {}) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'read',
    state: 's1',
    resource: RESOURCE,
    ...extra,
  });
  return `/authorize?${q}`;
}

function pathOf(location: string | string[] | undefined): string {
  const url = new URL(String(location), ISSUER);
  return `${url.pathname}${url.search}`;
}

function form(payload: Record<string, string>) {
  return {
    method: 'POST' as const,
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(payload).toString(),
  };
}

/** The error page /authorize answers, checked to be a page (never a redirect) with this description. */
function assertErrorPage(t: Tap.Test, res: LightMyRequestResponse, description: RegExp, status = 400): void {
  t.equal(res.statusCode, status, res.body.slice(0, 300));
  t.notOk(res.headers.location, 'never a redirect');
  t.match(res.headers['content-type'], /^text\/html/);
  t.match(res.body, description);
}

async function cimdClient(
  t: Tap.Test,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<{ server: DocumentServer; clientId: string }> {
  const server = await startDocumentServer(t);
  const clientId = `${server.origin}/oauth/client.json`;
  server.json('/oauth/client.json', clientIdDocument(clientId, extra), headers);
  return { server, clientId };
}

t.test(
  'the whole flow with a metadata-document client: authorize, sign-in, consent, code, token, refresh, revoke',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const { server, clientId } = await cimdClient(t, {
      scope: 'read write',
      logo_uri: 'https://cdn.example.com/logo.png',
    });
    const browser = new Browser(app);
    const { verifier, challenge } = pkce();

    const start = await browser.get(authorizeUrl(clientId, challenge));
    t.equal(start.statusCode, 303, start.body);
    t.match(start.headers.location, /^https:\/\/host\.example\.com\/login\?login_request=/);
    t.equal(server.hits('/oauth/client.json'), 1, 'the document was fetched once');
    const row = await findClientById(app.database.db, clientId);
    t.match(
      row,
      {
        source: 'metadata_document',
        name: 'Example MCP Client',
        token_endpoint_auth_method: 'none',
        secret_hash: null,
        skip_consent: false,
        application_type: 'native',
      },
      'stored for the foreign keys',
    );

    const complete = await browser.get(
      await answerLoginRequest(start.headers.location, { sub: 'alice', claims: { name: 'Alice' } }),
    );
    t.match(complete.headers.location, /\/consent\?request=/, 'always consent');
    const consent = await browser.get(pathOf(complete.headers.location));
    t.equal(consent.statusCode, 200, consent.body);
    t.match(consent.body, /Example MCP Client/);
    t.match(consent.body, /This application identifies itself as/);
    t.match(
      consent.body,
      new RegExp(`<p class="redirect-host">${new URL(clientId).host.replace(/\./g, '\\.')}</p>`),
      'the client_id host, prominently',
    );
    t.notMatch(consent.body, /cdn\.example\.com\/logo\.png/, "the document's logo is not loaded");
    t.notMatch(consent.body, /You will be sent to/, 'no mismatch warning: the redirect goes to the same host');

    const requestId = new URL(String(complete.headers.location), ISSUER).searchParams.get('request')!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(consent.body)![1]!;
    const allowed = await browser.postForm('/consent', { request: requestId, csrf, decision: 'allow' });
    t.equal(allowed.statusCode, 303, allowed.body);
    const callback = new URL(String(allowed.headers.location));
    t.equal(`${callback.origin}${callback.pathname}`, REDIRECT);
    const code = callback.searchParams.get('code')!;

    const tokenRes = await app.inject(
      form({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: REDIRECT,
      }),
    );
    t.equal(tokenRes.statusCode, 200, tokenRes.body);
    const tokens = tokenRes.json();
    const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json());
    const { payload } = await jwtVerify(tokens.access_token, jwks, {
      issuer: ISSUER,
      audience: RESOURCE,
      typ: 'at+jwt',
    });
    t.equal(payload.client_id, clientId);
    t.equal(payload.sub, 'alice');

    const refreshed = await app.inject(
      form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId }),
    );
    t.equal(refreshed.statusCode, 200, refreshed.body);
    const revoked = await app.inject({
      ...form({ token: refreshed.json().refresh_token, client_id: clientId }),
      url: '/revoke',
    });
    t.equal(revoked.statusCode, 200);
    t.equal(server.hits('/oauth/client.json'), 1, 'every later step used the cached document');

    // Consent is never skipped, even when an operator sets the flag on the stored row; once the document
    // is due, the refetch resets the row from it.
    await app.database.db
      .updateTable('clients')
      .set({
        skip_consent: true,
        token_endpoint_auth_method: 'client_secret_basic',
        secret_hash: 'x',
        document_expires_at: new Date(0),
      })
      .where('client_id', '=', clientId)
      .execute();
    app.clients.invalidate(clientId);
    const again = await browser.get(authorizeUrl(clientId, pkce().challenge, { prompt: 'none' }));
    // prompt=none shows no consent page; and a metadata-document client's redirect is nobody's vetting,
    // so the error is told on Gatehouse's page, not by sending the browser there (RFC 9700 §4.11.2).
    t.equal(again.statusCode, 400);
    t.notOk(again.headers.location, 'not redirected to the unvetted client');
    t.match(again.body, /consent_required/);
    t.equal(server.hits('/oauth/client.json'), 2, 'the due document was fetched again');
    t.match(
      await findClientById(app.database.db, clientId),
      { skip_consent: false, token_endpoint_auth_method: 'none', secret_hash: null },
      'the refetch reset the row from the document',
    );
  },
);

t.test(
  'only /authorize fetches: /token, /revoke and /sign-out with an unseen client_id URL fetch nothing and store nothing',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const server = await startDocumentServer(t);
    const ids = Array.from({ length: 3 }, (_, i) => `${server.origin}/fresh-${i}.json`);
    for (const id of ids) server.json(new URL(id).pathname, clientIdDocument(id));
    const [tokenId, revokeId, signOutId] = ids as [string, string, string];
    const token = await app.inject(
      form({
        grant_type: 'authorization_code',
        code: 'x',
        code_verifier: 'y'.repeat(43),
        client_id: tokenId,
        redirect_uri: REDIRECT,
      }),
    );
    t.equal(token.json().error, 'invalid_client');
    const refresh = await app.inject(form({ grant_type: 'refresh_token', refresh_token: 'x', client_id: tokenId }));
    t.equal(refresh.json().error, 'invalid_client');
    const revoke = await app.inject({ ...form({ token: 'x', client_id: revokeId }), url: '/revoke' });
    t.equal(revoke.statusCode, 401, revoke.body);
    const signOut = await app.inject({
      method: 'GET',
      url: `/sign-out?${new URLSearchParams({ client_id: signOutId, post_logout_redirect_uri: REDIRECT })}`,
    });
    t.equal(signOut.statusCode, 200, 'the signed-out page, no redirect');
    t.equal(server.total(), 0, 'no document was fetched');
    const rows = await app.database.db
      .selectFrom('clients')
      .select('client_id')
      .where('client_id', 'in', ids)
      .execute();
    t.same(rows, [], 'no client row was created');
  },
);

t.test(
  'the token endpoint works from the stored row once the document is due; the next /authorize fetches it again',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    // no-store: the document is due at once, so any lookup that fetched would show in the hit count.
    const { server, clientId } = await cimdClient(t, {}, { 'cache-control': 'no-store' });
    const browser = new Browser(app);
    const { verifier, challenge } = pkce();
    const start = await browser.get(authorizeUrl(clientId, challenge));
    t.equal(server.hits('/oauth/client.json'), 1);
    const complete = await browser.get(await answerLoginRequest(start.headers.location, { sub: 'carol' }));
    const consent = await browser.get(pathOf(complete.headers.location));
    const requestId = new URL(String(complete.headers.location), ISSUER).searchParams.get('request')!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(consent.body)![1]!;
    const allowed = await browser.postForm('/consent', { request: requestId, csrf, decision: 'allow' });
    const code = new URL(String(allowed.headers.location)).searchParams.get('code')!;
    app.clients.invalidate(); // as when the row cache has expired
    const tokens = await app.inject(
      form({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: REDIRECT,
      }),
    );
    t.equal(tokens.statusCode, 200, tokens.body);
    const refreshed = await app.inject(
      form({ grant_type: 'refresh_token', refresh_token: tokens.json().refresh_token, client_id: clientId }),
    );
    t.equal(refreshed.statusCode, 200, refreshed.body);
    t.equal(server.hits('/oauth/client.json'), 1, 'sign-in, consent, token and refresh fetched nothing');

    await app.database.db
      .updateTable('clients')
      .set({ disabled_at: new Date() })
      .where('client_id', '=', clientId)
      .execute();
    app.clients.invalidate(clientId);
    const disabled = await app.inject(
      form({ grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token, client_id: clientId }),
    );
    t.equal(disabled.json().error, 'invalid_client', 'a disabled client is refused');
    await app.database.db.updateTable('clients').set({ disabled_at: null }).where('client_id', '=', clientId).execute();
    app.clients.invalidate(clientId);

    t.equal((await browser.get(authorizeUrl(clientId))).statusCode, 303);
    t.equal(server.hits('/oauth/client.json'), 2, 'the next /authorize fetched the document again');
  },
);

t.test('a redirect to another host than the client_id is pointed out on the consent page', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { clientId } = await cimdClient(t, { redirect_uris: ['https://elsewhere.example.net/cb'] });
  const browser = new Browser(app);
  const start = await browser.get(
    authorizeUrl(clientId, pkce().challenge, { redirect_uri: 'https://elsewhere.example.net/cb' }),
  );
  const complete = await browser.get(await answerLoginRequest(start.headers.location, { sub: 'bob' }));
  const consent = await browser.get(pathOf(complete.headers.location));
  t.match(consent.body, /You will be sent to elsewhere\.example\.net, not to 127\.0\.0\.1:\d+/);
});

t.test('a document that cannot be used gives an error page saying why, never a redirect', async (t) => {
  const app = await buildTestApp(t, ENV);
  const server = await startDocumentServer(t);
  const url = (path: string) => `${server.origin}${path}`;
  const bad: Array<[string, (id: string) => void, RegExp]> = [
    [
      '/mismatch.json',
      (id) => server.json('/mismatch.json', clientIdDocument(`${id}x`)),
      /client_id in the document does not equal the URL/,
    ],
    [
      '/secret.json',
      (id) => server.json('/secret.json', clientIdDocument(id, { token_endpoint_auth_method: 'client_secret_basic' })),
      /client_secret_basic uses a shared secret/,
    ],
    [
      '/no-redirects.json',
      (id) => server.json('/no-redirects.json', { client_id: id, client_name: 'x' }),
      /has no redirect_uris/,
    ],
    [
      '/moved.json',
      () => server.route('/moved.json', (_q, r) => r.writeHead(302, { location: url('/other.json') }).end()),
      /answered 302 \(a redirect\), and redirects are not followed/,
    ],
    ['/missing.json', () => undefined, /answered 404, not 200/],
    [
      '/html.json',
      () => server.route('/html.json', (_q, r) => r.writeHead(200, { 'content-type': 'text/html' }).end('<html>')),
      /not application\/json/,
    ],
    [
      '/big.json',
      (id) => server.json('/big.json', clientIdDocument(id, { software_statement: 'x'.repeat(6000) })),
      /larger than 5120 bytes/,
    ],
  ];
  for (const [path, serve, reason] of bad) {
    serve(url(path));
    const res = await app.inject({ method: 'GET', url: authorizeUrl(url(path)) });
    assertErrorPage(t, res, reason);
    t.match(res.body, /Unknown application/);
    t.match(res.body, /client metadata document could not be used/);
  }
  assertErrorPage(
    t,
    await app.inject({ method: 'GET', url: authorizeUrl('http://127.0.0.1:9/client.json') }),
    /must use the https scheme/,
  );
  assertErrorPage(
    t,
    await app.inject({ method: 'GET', url: authorizeUrl(`${server.origin}/`) }),
    /must contain a path/,
  );
  assertErrorPage(t, await app.inject({ method: 'GET', url: authorizeUrl(server.origin) }), /must contain a path/);
  t.equal(server.hits('/'), 0, 'an id without a path is never fetched');
  const token = await app.inject(
    form({
      grant_type: 'authorization_code',
      code: 'x',
      code_verifier: 'y'.repeat(43),
      client_id: url('/missing.json'),
    }),
  );
  t.equal(token.json().error, 'invalid_client', 'the token endpoint knows no such client');
});

t.test(
  'connection-level failures say only "could not be fetched" on the page (no port scanning); the log has the detail',
  async (t) => {
    const logs: Array<Record<string, unknown>> = [];
    const app = await buildTestApp(t, { ...ENV, LOG_LEVEL: 'info' }, { logs });
    const server = await startDocumentServer(t);
    server.route('/hang.json', () => undefined);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const untrusting = { ...ENV };
    delete untrusting.CIMD_CA_FILE;
    const strictTls = await buildTestApp(t, { ...untrusting, LOG_LEVEL: 'info' }, { logs });
    server.json('/untrusted.json', clientIdDocument(`${server.origin}/untrusted.json`));

    const cases: Array<[FastifyInstance, string, RegExp]> = [
      [app, `https://127.0.0.1:${closedPort}/client.json`, /^the connection was refused$/],
      [app, `${server.origin}/hang.json`, /^no complete answer within 400 ms$/],
      [strictTls, `${server.origin}/untrusted.json`, /^the TLS connection failed \(\w+\)$/],
    ];
    for (const [instance, clientId, detail] of cases) {
      const res = await instance.inject({ method: 'GET', url: authorizeUrl(clientId) });
      assertErrorPage(t, res, /client metadata document could not be fetched/);
      t.notMatch(res.body, /refused|reset|TLS|within \d+ ms|ECONN|CERT/i, 'no connection-level detail on the page');
      t.match(
        logs.filter((l) => l.clientId === clientId),
        [{ msg: 'client metadata document refused', reason: detail }],
        'logged at info with the URL and the detail',
      );
    }
  },
);

t.test(
  'loopback and private addresses are refused without the development flag, with no connection made',
  async (t) => {
    const strict = { ...ENV };
    delete strict.CIMD_ALLOW_PRIVATE_ADDRESSES;
    const app = await buildTestApp(t, strict);
    const { server, clientId } = await cimdClient(t);
    assertErrorPage(
      t,
      await app.inject({ method: 'GET', url: authorizeUrl(clientId) }),
      /special-use address \(loopback/,
    );
    assertErrorPage(
      t,
      await app.inject({ method: 'GET', url: authorizeUrl('https://192.168.1.1/client.json') }),
      /special-use address \(private/,
    );
    t.equal(server.total(), 0);
  },
);

t.test('valid documents are cached as their headers say; no-store is not cached', async (t) => {
  const app = await buildTestApp(t, ENV);
  const server = await startDocumentServer(t);
  const cached = `${server.origin}/cached.json`;
  const uncached = `${server.origin}/uncached.json`;
  server.json('/cached.json', clientIdDocument(cached), { 'cache-control': 'max-age=600' });
  server.json('/uncached.json', clientIdDocument(uncached), { 'cache-control': 'no-store' });
  t.ok((await app.clients.resolveForAuthorization(cached)).client);
  t.ok((await app.clients.resolveForAuthorization(cached)).client);
  t.equal(server.hits('/cached.json'), 1, 'max-age: the second lookup made no request');
  t.ok((await app.clients.resolveForAuthorization(uncached)).client);
  t.ok((await app.clients.resolveForAuthorization(uncached)).client);
  t.equal(server.hits('/uncached.json'), 2, 'no-store: every lookup fetches');
});

t.test('an invalid document or a failed fetch is never cached: fixing it works at once', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { server, clientId } = await cimdClient(t, { token_endpoint_auth_method: 'client_secret_post' });
  assertErrorPage(
    t,
    await app.inject({ method: 'GET', url: authorizeUrl(clientId) }),
    /client_secret_post uses a shared secret/,
  );
  server.json('/oauth/client.json', clientIdDocument(clientId));
  const fixed = await app.inject({ method: 'GET', url: authorizeUrl(clientId) });
  t.equal(fixed.statusCode, 303, fixed.body);
  t.equal(server.hits('/oauth/client.json'), 2);

  const down = `${server.origin}/flaky.json`;
  server.route('/flaky.json', (_q, r) => r.writeHead(503, { 'content-type': 'application/json' }).end('{}'));
  t.match(await app.clients.resolveForAuthorization(down), { client: undefined, problem: /answered 503/ });
  server.json('/flaky.json', clientIdDocument(down));
  t.ok((await app.clients.resolveForAuthorization(down)).client, 'the next lookup fetched again');
});

t.test('concurrent lookups of one URL share one fetch', async (t) => {
  const app = await buildTestApp(t, ENV);
  const server = await startDocumentServer(t);
  const clientId = `${server.origin}/slow.json`;
  server.route('/slow.json', (_q, r) =>
    setTimeout(
      () => r.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(clientIdDocument(clientId))),
      50,
    ),
  );
  const results = await Promise.all(Array.from({ length: 5 }, () => app.clients.resolveForAuthorization(clientId)));
  t.ok(results.every((r) => r.client?.client_id === clientId));
  t.equal(server.hits('/slow.json'), 1);
});

t.test('two replicas resolving one client at once both succeed, with one row', async (t) => {
  const one = await buildTestApp(t, ENV);
  const two = await buildTestApp(t, ENV);
  const { clientId } = await cimdClient(t);
  const [a, b] = await Promise.all([
    one.clients.resolveForAuthorization(clientId),
    two.clients.resolveForAuthorization(clientId),
  ]);
  t.ok(a.client && b.client);
  const rows = await one.database.db
    .selectFrom('clients')
    .select('client_id')
    .where('client_id', '=', clientId)
    .execute();
  t.equal(rows.length, 1);
});

t.test('a pre-registered https client_id is used as registered, without a fetch', async (t) => {
  const app = await buildTestApp(t, ENV);
  const server = await startDocumentServer(t);
  const clientId = `${server.origin}/registered.json`;
  await app.clientAdmin.create(
    { name: 'Registered', token_endpoint_auth_method: 'none', application_type: 'native', redirect_uris: [REDIRECT] },
    { clientId },
  );
  const res = await app.inject({ method: 'GET', url: authorizeUrl(clientId) });
  t.equal(res.statusCode, 303, res.body);
  t.equal(server.total(), 0);
});

t.test('metadata advertises client_id_metadata_document_supported only when on', async (t) => {
  const on = await buildTestApp(t, ENV);
  t.equal(
    (await on.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
      .client_id_metadata_document_supported,
    true,
  );
  t.equal(
    (await on.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json()
      .client_id_metadata_document_supported,
    true,
  );
  const off = await buildTestApp(t, { ...ENV, CIMD_ENABLED: 'false' });
  t.notOk(
    'client_id_metadata_document_supported' in
      (await off.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json(),
  );
});

t.test('with CIMD off a URL client_id is simply unknown, and nothing is fetched', async (t) => {
  const app = await buildTestApp(t, { ...ENV, CIMD_ENABLED: 'false' });
  const { server, clientId } = await cimdClient(t);
  const res = await app.inject({ method: 'GET', url: authorizeUrl(clientId) });
  assertErrorPage(t, res, /Unknown or disabled client/);
  t.equal(server.total(), 0);

  // A row left from when CIMD was on is not trusted once it is off.
  const on = await buildTestApp(t, ENV);
  t.ok((await on.clients.resolveForAuthorization(clientId)).client);
  t.equal((await app.clients.resolveForAuthorization(clientId)).client, undefined);
});
