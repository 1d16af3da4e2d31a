import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair } from 'jose';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { HostKeyConfigurationError, loadHostPublicKeyFile } from '../../src/handshake/host-keys.js';
import { HOST_ID, SIGN_IN_URL, hostKeyPair, signLoginResponse } from '../fixtures/host.js';
import { buildTestApp, testConfig, testDatabase } from '../helper.js';
import {
  ISSUER,
  SESSION_COOKIE,
  complete,
  errorDescription,
  handshakeEnv,
  shown,
  pendingRequest,
  sessionCount,
  webClient,
} from '../fixtures/handshake.js';

t.test(
  'ES256 host key from a PEM file: a good answer signs in; alg confusion and foreign keys are refused',
  async (t) => {
    const host = await hostKeyPair('pem');
    const app = await buildTestApp(t, handshakeEnv({ HANDSHAKE_SECRET: '', ...host.env }));
    const client = await webClient(app);
    const { pending, cookies } = await pendingRequest(app, client);
    const good = { request: pending.id, aud: ISSUER, sub: 'user-es256' };
    const pem = await readFile(host.file, 'utf8');
    const other = await generateKeyPair('ES256');
    const before = await sessionCount(app);
    const cases: Array<[string, Promise<string>, string]> = [
      // The classic confusion: HS256 MACed with the public key's bytes, which an attacker knows.
      [
        'HS256 MACed with the public key PEM',
        signLoginResponse(good, { secret: pem }),
        'login_response must be signed with ES256',
      ],
      [
        'HS256 MACed with some secret',
        signLoginResponse(good, { secret: 'x'.repeat(32) }),
        'login_response must be signed with ES256',
      ],
      [
        'ES256 by another key',
        signLoginResponse(good, { privateKey: other.privateKey }),
        'the login_response signature does not verify',
      ],
      [
        'right key, wrong typ',
        signLoginResponse(good, { privateKey: host.privateKey, header: { typ: 'JWT' } }),
        'login_response must have the JWT header typ "login-response+jwt" (RFC 8725 §3.11)',
      ],
    ];
    for (const [name, token, description] of cases) {
      const res = await complete(app, await token, cookies);
      t.equal(res.statusCode, 400, name);
      t.equal(errorDescription(res), shown(description), name);
    }
    t.equal(await sessionCount(app), before, 'none created a session');
    const res = await complete(app, await signLoginResponse(good, { privateKey: host.privateKey }), cookies);
    t.equal(res.statusCode, 303, res.body);
    t.ok(res.cookies.find((c) => c.name === SESSION_COOKIE));
    t.equal(await sessionCount(app), before + 1);
  },
);

t.test('ES256 host key from a JWK file', async (t) => {
  const host = await hostKeyPair('jwk');
  const app = await buildTestApp(t, handshakeEnv({ HANDSHAKE_SECRET: '', ...host.env }));
  const client = await webClient(app);
  const { pending, cookies } = await pendingRequest(app, client);
  const res = await complete(
    app,
    await signLoginResponse({ request: pending.id, aud: ISSUER, sub: 'user-jwk' }, { privateKey: host.privateKey }),
    cookies,
  );
  t.equal(res.statusCode, 303, res.body);
});

t.test('host public key files: PEM and JWK of each allowed type, and what is refused', async (t) => {
  const write = async (content: string) => {
    const file = join(tmpdir(), `gatehouse-hostkey-${randomBytes(6).toString('hex')}`);
    await writeFile(file, content);
    return file;
  };
  for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    t.same((await loadHostPublicKeyFile(await write(await exportSPKI(publicKey)))).algorithms, [alg], `${alg} PEM`);
    t.same(
      (await loadHostPublicKeyFile(await write(JSON.stringify(await exportJWK(publicKey))))).algorithms,
      [alg],
      `${alg} JWK`,
    );
    await t.rejects(
      loadHostPublicKeyFile(await write(JSON.stringify(await exportJWK(privateKey)))),
      HostKeyConfigurationError,
      `${alg}: a private JWK is refused`,
    );
  }
  const es384 = await generateKeyPair('ES384', { extractable: true });
  await t.rejects(
    loadHostPublicKeyFile(await write(await exportSPKI(es384.publicKey))),
    /must be an EC P-256 \(ES256\), RSA \(RS256\) or Ed25519 \(EdDSA\) public key/,
  );
  const es256 = await generateKeyPair('ES256', { extractable: true });
  await t.rejects(
    loadHostPublicKeyFile(await write(JSON.stringify({ ...(await exportJWK(es256.publicKey)), alg: 'RS256' }))),
    /says alg RS256/,
  );
  await t.rejects(loadHostPublicKeyFile(await write(JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }))), /public key only/);
  await t.rejects(loadHostPublicKeyFile(await write('not a key')), /is not a PEM public key/);
  await t.rejects(loadHostPublicKeyFile('/nonexistent/host.pem'), /cannot read \/nonexistent\/host.pem \(ENOENT\)/);
  const set = { keys: [await exportJWK(es256.publicKey)] };
  t.same(
    (await loadHostPublicKeyFile(await write(JSON.stringify(set)))).algorithms,
    ['ES256', 'RS256', 'EdDSA'],
    'a JWK Set',
  );
});

t.test('a bad HOST_PUBLIC_KEY_FILE stops the start', async (t) => {
  const database = await testDatabase();
  const config = testConfig(
    handshakeEnv({ HANDSHAKE_SECRET: '', SIGN_IN_URL, HOST_ID, HOST_PUBLIC_KEY_FILE: '/nonexistent/host.pem' }),
  );
  await t.rejects(
    (async () => {
      const app = await buildApp(config, { database });
      await app.close();
    })(),
    HostKeyConfigurationError,
  );
});

t.test('host keys from HOST_JWKS_URL: verified, unknown kid refused, unreachable JWKS is a 503', async (t) => {
  const es = await generateKeyPair('ES256', { extractable: true });
  const ed = await generateKeyPair('EdDSA', { extractable: true });
  const jwks = {
    keys: [
      { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256' },
      { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA' },
    ],
  };
  let fetches = 0;
  const server = createServer((req, res) => {
    fetches += 1;
    if (req.url === '/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;

  const app = await buildTestApp(
    t,
    handshakeEnv({ HANDSHAKE_SECRET: '', HOST_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` }),
  );
  const client = await webClient(app);
  const one = await pendingRequest(app, client);
  const es256 = await complete(
    app,
    await signLoginResponse(
      { request: one.pending.id, aud: ISSUER, sub: 'user-jwks' },
      { privateKey: es.privateKey, header: { kid: 'es-1' } },
    ),
    one.cookies,
  );
  t.equal(es256.statusCode, 303, es256.body);
  const two = await pendingRequest(app, client);
  const eddsa = await complete(
    app,
    await signLoginResponse(
      { request: two.pending.id, aud: ISSUER, sub: 'user-jwks' },
      { privateKey: ed.privateKey, header: { alg: 'EdDSA', kid: 'ed-1' } },
    ),
    two.cookies,
  );
  t.equal(eddsa.statusCode, 303, eddsa.body);
  t.equal(fetches, 1, 'the JWKS is fetched once and cached');

  const three = await pendingRequest(app, client);
  const before = await sessionCount(app);
  const unknown = await complete(
    app,
    await signLoginResponse(
      { request: three.pending.id, aud: ISSUER, sub: 'x' },
      { privateKey: es.privateKey, header: { kid: 'nope' } },
    ),
    three.cookies,
  );
  t.equal(unknown.statusCode, 400);
  t.equal(errorDescription(unknown), shown('no host key matches the kid and alg of login_response'));
  const hs = await complete(
    app,
    await signLoginResponse({ request: three.pending.id, aud: ISSUER, sub: 'x' }, { secret: 'y'.repeat(40) }),
    three.cookies,
  );
  t.equal(
    errorDescription(hs),
    shown('login_response must be signed with ES256, RS256, EdDSA'),
    'no HS256 with public keys',
  );
  t.equal(await sessionCount(app), before);

  const down = await buildTestApp(
    t,
    handshakeEnv({ HANDSHAKE_SECRET: '', HOST_JWKS_URL: `http://127.0.0.1:${port}/missing.json` }),
  );
  const four = await pendingRequest(down, client);
  const unavailable = await complete(
    down,
    await signLoginResponse(
      { request: four.pending.id, aud: ISSUER, sub: 'x' },
      { privateKey: es.privateKey, header: { kid: 'es-1' } },
    ),
    four.cookies,
  );
  t.equal(unavailable.statusCode, 503);
  t.equal(errorDescription(unavailable), shown('the signing keys of the host app could not be fetched; try again'));
  t.equal(await sessionCount(app), before);
});
