import type { FastifyInstance } from 'fastify';
import { type CryptoKey, type JWK, SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import { dpopNonces } from '../../src/oauth/dpop-nonce.js';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { createAuthorizationCode } from '../../src/repositories/authorization-code.repository.js';
import { sweepExpired } from '../../src/services/janitor.js';
import { basic } from '../fixtures/clients.js';
import { BASE_ENV, buildTestApp } from '../helper.js';
import { pkce } from '../kit/pkce.js';

/**
 * The token endpoint's DPoP checks (RFC 9449 §4.3, §5, §8, §10) with hand-made proofs, so every refusal
 * can be built exactly: each is answered with the RFC's error, never a 500.
 */

const ISSUER = 'https://auth.example.com';
const TOKEN_URL = `${ISSUER}/token`;
const ENV = { ISSUER, SCOPES: 'read write', RESOURCES: 'https://api.example.com' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const REDIRECT = 'https://app.example.com/cb';

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function newKey(alg = 'ES256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

let counter = 0;
/** A DPoP proof as RFC 9449 §4.2 describes it, with whatever the test overrides. */
async function proof(
  key: Key,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({
    jti: `proof-${Date.now()}-${++counter}`,
    htm: 'POST',
    htu: TOKEN_URL,
    iat: Math.floor(Date.now() / 1000),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(key.privateKey);
}

async function machine(app: FastifyInstance, overrides: Record<string, unknown> = {}) {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Machine',
    grant_types: ['client_credentials'],
    ...overrides,
  });
  return { authorization: basic(client.client_id, secret!) };
}

function token(app: FastifyInstance, body: Record<string, string>, headers: Record<string, string | string[]>) {
  return app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, ...headers },
    payload: new URLSearchParams(body).toString(),
  });
}

/** Mints a code as the flow would, directly in the database. */
async function mintCode(app: FastifyInstance, clientId: string, challenge: string, dpopJkt: string | null = null) {
  const code = generateToken();
  await createAuthorizationCode(app.database.db, {
    code_hash: hashSecret(code),
    client_id: clientId,
    redirect_uri: REDIRECT,
    redirect_uri_given: true,
    code_challenge: challenge,
    scopes: ['read'],
    resources: ['https://api.example.com'],
    sub: 'user-42',
    auth_time: new Date(Date.now() - 60_000),
    expires_at: new Date(Date.now() + 60_000),
    consumed_at: null,
    family_id: null,
    dpop_jkt: dpopJkt,
  });
  return code;
}

t.test('a valid proof binds the client_credentials token; each bad proof gets invalid_dpop_proof', async (t) => {
  const app = await buildTestApp(t, ENV);
  const c = await machine(app);
  const key = await newKey();
  const ok = await token(app, { grant_type: 'client_credentials' }, { ...c, dpop: await proof(key) });
  t.equal(ok.statusCode, 200, ok.body);
  t.equal(ok.json().token_type, 'DPoP', 'RFC 9449 §5');
  t.same(decodeJwt(ok.json().access_token).cnf, { jkt: key.jkt }, 'RFC 9449 §6.1');
  t.notOk(ok.headers['dpop-nonce'], 'no nonce handed out while nonces are not required');

  const now = Math.floor(Date.now() / 1000);
  const hs = new SignJWT({ jti: 'hs', htm: 'POST', htu: TOKEN_URL, iat: now })
    // jose's types forbid a symmetric jwk in a header; the server must refuse one at run time.
    .setProtectedHeader({
      alg: 'HS256',
      typ: 'dpop+jwt',
      jwk: { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' } as unknown as JWK,
    })
    .sign(new TextEncoder().encode('secret-secret-secret-secret-abcd'));
  const unsigned = (body: Record<string, unknown>, head: Record<string, unknown>) =>
    `${Buffer.from(JSON.stringify(head)).toString('base64url')}.${Buffer.from(JSON.stringify(body)).toString('base64url')}.`;
  const privateJwk = await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey);
  const other = await newKey();
  const cases: Array<[string, string | string[], RegExp]> = [
    ['not a JWT', 'not-a-jwt', /not a JWT/],
    ['two DPoP headers', [await proof(key), await proof(key)], /exactly one/],
    ['typ JWT', await proof(key, {}, { typ: 'JWT' }), /typ/],
    [
      'alg none',
      unsigned({ jti: 'n', htm: 'POST', htu: TOKEN_URL, iat: now }, { alg: 'none', typ: 'dpop+jwt', jwk: key.jwk }),
      /alg/,
    ],
    ['HS256', await hs, /alg/],
    ['a private key in jwk', await proof(key, {}, { jwk: privateJwk }), /public key/],
    ['no jwk', await proof(key, {}, { jwk: undefined }), /jwk/],
    ['signed by another key than its jwk', await proof(other, {}, { jwk: key.jwk }), /signature/],
    ['htm GET', await proof(key, { htm: 'GET' }), /htm/],
    ['htu of another endpoint', await proof(key, { htu: `${ISSUER}/revoke` }), /htu/],
    ['htu of another server', await proof(key, { htu: 'https://evil.example.com/token' }), /htu/],
    ['htu not a URL', await proof(key, { htu: 'token' }), /htu/],
    ['iat ten minutes old', await proof(key, { iat: now - 600 }), /iat/],
    ['iat ten minutes ahead', await proof(key, { iat: now + 600 }), /iat/],
    ['iat a string', await proof(key, { iat: String(now) }), /iat/],
    ['no jti', await proof(key, { jti: undefined }), /jti/],
    ['a jti of 300 characters', await proof(key, { jti: 'x'.repeat(300) }), /jti/],
  ];
  for (const [name, value, description] of cases) {
    const res = await token(app, { grant_type: 'client_credentials' }, { ...c, dpop: value });
    t.equal(res.statusCode, 400, `${name}: ${res.body}`);
    t.equal(res.json().error, 'invalid_dpop_proof', name);
    t.match(res.json().error_description, description, `${name}: says why`);
    t.equal(res.headers['cache-control'], 'no-store', name);
  }

  // RFC 9449 §4.3: htu is compared after normalisation, query and fragment ignored.
  for (const htu of ['HTTPS://Auth.Example.com:443/token', `${TOKEN_URL}?x=1#frag`]) {
    const res = await token(app, { grant_type: 'client_credentials' }, { ...c, dpop: await proof(key, { htu }) });
    t.equal(res.statusCode, 200, `${htu}: ${res.body}`);
  }
});

t.test('a replayed proof is refused, also by another replica on the same database', async (t) => {
  const app = await buildTestApp(t, ENV);
  const replica = await buildTestApp(t, ENV);
  const c = await machine(app);
  const key = await newKey();
  const once = await proof(key);
  const first = await token(app, { grant_type: 'client_credentials' }, { ...c, dpop: once });
  t.equal(first.statusCode, 200, first.body);
  for (const [name, target] of [
    ['same replica', app],
    ['another replica', replica],
  ] as const) {
    const again = await token(target, { grant_type: 'client_credentials' }, { ...c, dpop: once });
    t.equal(again.statusCode, 400, name);
    t.equal(again.json().error, 'invalid_dpop_proof', name);
    t.match(again.json().error_description, /already used/, name);
  }
  // The janitor forgets a proof once its iat is outside the window, not before.
  const swept = await sweepExpired(app.database.db, {
    retentionSeconds: 3600,
    sessionIdleSeconds: 86400,
    accessTokenLifetimeSeconds: 3630,
  });
  t.equal(swept.dpop_proofs, 0, 'a fresh proof is kept');
  const later = await sweepExpired(app.database.db, {
    retentionSeconds: 3600,
    sessionIdleSeconds: 86400,
    accessTokenLifetimeSeconds: 3630,
    clock: () => new Date(Date.now() + 10 * 60_000),
  });
  t.ok(later.dpop_proofs >= 1, 'an expired one is deleted');
});

t.test('DPOP_REQUIRED and dpop_bound_access_tokens: no proof is invalid_request', async (t) => {
  const app = await buildTestApp(t, ENV);
  const bound = await machine(app, { dpop_bound_access_tokens: true });
  const free = await machine(app);
  const refused = await token(app, { grant_type: 'client_credentials' }, bound);
  t.equal(refused.statusCode, 400);
  t.equal(refused.json().error, 'invalid_request');
  t.match(refused.json().error_description, /DPoP proof/);
  t.equal((await token(app, { grant_type: 'client_credentials' }, free)).statusCode, 200, 'others unaffected');
  const key = await newKey();
  const ok = await token(app, { grant_type: 'client_credentials' }, { ...bound, dpop: await proof(key) });
  t.equal(ok.statusCode, 200);

  const strict = await buildTestApp(t, { ...ENV, DPOP_REQUIRED: 'true' });
  const anyone = await machine(strict);
  const none = await token(strict, { grant_type: 'client_credentials' }, anyone);
  t.equal(none.json().error, 'invalid_request', 'DPOP_REQUIRED');
  const withProof = await token(strict, { grant_type: 'client_credentials' }, { ...anyone, dpop: await proof(key) });
  t.equal(withProof.statusCode, 200);
});

t.test('server nonces: use_dpop_nonce with DPoP-Nonce, the nonce accepted by another replica', async (t) => {
  const app = await buildTestApp(t, { ...ENV, DPOP_NONCE_REQUIRED: 'true' });
  const replica = await buildTestApp(t, { ...ENV, DPOP_NONCE_REQUIRED: 'true' });
  const c = await machine(app);
  const key = await newKey();
  const asked = await token(app, { grant_type: 'client_credentials' }, { ...c, dpop: await proof(key) });
  t.equal(asked.statusCode, 400);
  t.equal(asked.json().error, 'use_dpop_nonce', 'RFC 9449 §8');
  const nonce = asked.headers['dpop-nonce'];
  t.match(nonce, /^[A-Za-z0-9_-]{43}$/, 'an NQCHAR nonce');
  const ok = await token(replica, { grant_type: 'client_credentials' }, { ...c, dpop: await proof(key, { nonce }) });
  t.equal(ok.statusCode, 200, ok.body);
  t.equal(ok.headers['dpop-nonce'], nonce, 'the current nonce comes with every answer (RFC 9449 §8.2)');
  const wrong = await token(
    app,
    { grant_type: 'client_credentials' },
    { ...c, dpop: await proof(key, { nonce: 'x' }) },
  );
  t.equal(wrong.json().error, 'use_dpop_nonce', 'a nonce this server never issued');
  t.equal(wrong.headers['dpop-nonce'], nonce);

  // A nonce from another secret (another deployment) is not accepted; one from the previous slot is.
  const now = Math.floor(Date.now() / 1000);
  const foreign = dpopNonces('another-secret-entirely-0123456789abcdef').current(now);
  const refused = await token(
    app,
    { grant_type: 'client_credentials' },
    { ...c, dpop: await proof(key, { nonce: foreign }) },
  );
  t.equal(refused.json().error, 'use_dpop_nonce');
  const previous = dpopNonces(BASE_ENV.KEY_ENCRYPTION_SECRET!).current(now - 300);
  const accepted = await token(
    app,
    { grant_type: 'client_credentials' },
    { ...c, dpop: await proof(key, { nonce: previous }) },
  );
  t.equal(accepted.statusCode, 200, 'the previous slot is still current');
  const stale = dpopNonces(BASE_ENV.KEY_ENCRYPTION_SECRET!).current(now - 900);
  const expired = await token(
    app,
    { grant_type: 'client_credentials' },
    { ...c, dpop: await proof(key, { nonce: stale }) },
  );
  t.equal(expired.json().error, 'use_dpop_nonce', 'a nonce from 15 minutes ago');
});

t.test(
  'code exchange: dpop_jkt binds the code; a public client’s refresh chain is bound, a confidential one’s not',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const { client: pub } = await app.clientAdmin.create({
      name: 'Native',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    });
    const key = await newKey();
    const other = await newKey();
    const { verifier, challenge } = pkce();
    const code = await mintCode(app, pub.client_id, challenge, key.jkt);
    const exchange = {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: pub.client_id,
    };

    const noProof = await token(app, exchange, {});
    t.equal(noProof.statusCode, 400);
    t.equal(noProof.json().error, 'invalid_grant', 'RFC 9449 §10: the code needs the key');
    t.match(noProof.json().error_description, /dpop_jkt|DPoP/);
    const wrongKey = await token(app, exchange, { dpop: await proof(other) });
    t.equal(wrongKey.json().error, 'invalid_grant');
    t.match(wrongKey.json().error_description, /dpop_jkt/);
    const redeemed = await token(app, exchange, { dpop: await proof(key) });
    t.equal(redeemed.statusCode, 200, `the refusals did not burn the code: ${redeemed.body}`);
    t.equal(redeemed.json().token_type, 'DPoP');
    const refreshToken = redeemed.json().refresh_token as string;
    const refresh = { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: pub.client_id };

    const unproven = await token(app, refresh, {});
    t.equal(unproven.json().error, 'invalid_grant', 'RFC 9449 §5: a bound refresh token needs a proof');
    t.match(unproven.json().error_description, /bound to a DPoP key/);
    const stolen = await token(app, refresh, { dpop: await proof(other) });
    t.equal(stolen.json().error, 'invalid_grant', 'another key');
    t.match(stolen.json().error_description, /another DPoP key/);
    const rotated = await token(app, refresh, { dpop: await proof(key) });
    t.equal(rotated.statusCode, 200, `still usable by the key holder: ${rotated.body}`);
    const nextRefresh = { ...refresh, refresh_token: rotated.json().refresh_token as string };
    const stillBound = await token(app, nextRefresh, { dpop: await proof(other) });
    t.equal(stillBound.json().error, 'invalid_grant', 'the binding carries over to the next generation');

    // A confidential client: the chain is not bound (§5), yet each access token is when a proof comes.
    const { client: web, secret } = await app.clientAdmin.create({
      name: 'Web',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const auth = { authorization: basic(web.client_id, secret!) };
    const webPkce = pkce();
    const webCode = await mintCode(app, web.client_id, webPkce.challenge);
    const webTokens = await token(
      app,
      { grant_type: 'authorization_code', code: webCode, code_verifier: webPkce.verifier, redirect_uri: REDIRECT },
      { ...auth, dpop: await proof(key) },
    );
    t.equal(webTokens.json().token_type, 'DPoP');
    const plain = await token(
      app,
      { grant_type: 'refresh_token', refresh_token: webTokens.json().refresh_token },
      auth,
    );
    t.equal(plain.statusCode, 200, 'a confidential client refreshes without a proof');
    t.equal(plain.json().token_type, 'Bearer');
    t.notOk(decodeJwt(plain.json().access_token).cnf);
    const withOther = await token(
      app,
      { grant_type: 'refresh_token', refresh_token: plain.json().refresh_token },
      { ...auth, dpop: await proof(other) },
    );
    t.equal(withOther.json().token_type, 'DPoP', 'a proof by any key binds the new access token');
    t.same(decodeJwt(withOther.json().access_token).cnf, { jkt: other.jkt });
  },
);

t.test('/authorize: dpop_jkt must be a thumbprint', async (t) => {
  const app = await buildTestApp(t, ENV);
  const { client } = await app.clientAdmin.create({
    name: 'Native',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
  });
  const { challenge } = pkce();
  const res = await app.inject({
    method: 'GET',
    url: `/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      dpop_jkt: 'not a thumbprint',
    })}`,
  });
  t.equal(res.statusCode, 303);
  const location = new URL(String(res.headers.location));
  t.equal(location.searchParams.get('error'), 'invalid_request');
  t.match(location.searchParams.get('error_description'), /dpop_jkt/);
});
