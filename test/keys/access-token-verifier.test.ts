import { exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import type { JwkSet } from '../../src/keys/signing-key.js';
import { importSigningKey } from '../../src/keys/key-generation.js';
import type { PublicJwk } from '../../src/keys/public-jwk.js';
import { TtlCache } from '../../src/lib/ttl-cache.js';
import { issueAccessToken } from '../../src/oauth/tokens/access-token.js';
import { accessTokenVerifier, type RememberedToken } from '../../src/oauth/tokens/access-token-verifier.js';

const ISSUER = 'https://as.example';

async function signer(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const key = await importSigningKey(await exportJWK(privateKey), 'ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } as PublicJwk;
  return { kid, alg: 'ES256' as const, key, jwk };
}

type Signer = Awaited<ReturnType<typeof signer>>;

async function token(by: Signer, now: number, ttlSeconds = 60, subject = 'user-1'): Promise<string> {
  const issued = await issueAccessToken(by, {
    issuer: ISSUER,
    subject,
    clientId: 'client-1',
    audience: ['https://api.example'],
    scopes: ['read'],
    ttlSeconds,
    now,
  });
  return issued.token;
}

/** A verifier over a JWK Set the test can replace, a clock it moves, and a memory it can look into. */
function setup(keys: PublicJwk[], maxEntries = 16) {
  const state: { jwks: JwkSet; now: Date } = { jwks: { keys }, now: new Date('2026-12-07T12:00:00Z') };
  const verified = new TtlCache<RememberedToken>(maxEntries);
  const verify = accessTokenVerifier(() => state.jwks, {
    issuer: ISSUER,
    clockSkew: 5,
    clock: () => state.now,
    verified,
  });
  return { state, verified, verify, nowSeconds: () => Math.floor(state.now.getTime() / 1000) };
}

t.test('a verified token is remembered and answered alike, its claims checked again on every call', async (t) => {
  const a = await signer('k1');
  const { state, verified, verify, nowSeconds } = setup([a.jwk]);
  const at = await token(a, nowSeconds(), 60);
  const first = await verify(at);
  t.equal(first?.sub, 'user-1');
  t.equal(verified.size, 1, 'remembered once its signature and claims verified');
  t.same(await verify(at), first, 'the second answer is the first');
  t.equal(verified.size, 1);
  // Its exp (60 s) plus the 5 s skew passes: refused, remembered or not.
  state.now = new Date(state.now.getTime() + 64_000);
  t.ok(await verify(at), 'still inside exp + skew');
  state.now = new Date(state.now.getTime() + 1_000);
  t.equal(await verify(at), null, 'refused once exp + skew has passed');
  t.equal(verified.size, 0, 'and forgotten');
});

t.test('only a token that verified enters the memory, by its exact text', async (t) => {
  const a = await signer('k1');
  const forger = await signer('k1');
  const { verified, verify, nowSeconds } = setup([a.jwk]);
  const real = await token(a, nowSeconds());
  t.ok(await verify(real));
  // The same header and payload, signed by another key under the same kid: a different text, checked afresh.
  const forged = await token(forger, nowSeconds());
  const [header, payload] = real.split('.');
  const spliced = `${header}.${payload}.${forged.split('.')[2]}`;
  t.equal(await verify(spliced), null, 'a remembered payload with a foreign signature is refused');
  t.equal(await verify(forged), null);
  t.equal(await verify(`${real}x`), null, 'a remembered token with a byte more is refused');
  t.equal(verified.size, 1, 'nothing refused was remembered');
  // An expired token of ours verifies its signature but not its claims: not remembered.
  const expired = await token(a, nowSeconds() - 120, 60);
  t.equal(await verify(expired), null);
  t.equal(verified.size, 1);
});

t.test('a change of published keys forgets; a new JWKS object with the same keys does not', async (t) => {
  const a = await signer('k1');
  const b = await signer('k2');
  const { state, verified, verify, nowSeconds } = setup([a.jwk, b.jwk]);
  const byA = await token(a, nowSeconds());
  const byB = await token(b, nowSeconds());
  t.ok(await verify(byA));
  t.ok(await verify(byB));
  t.equal(verified.size, 2);
  // The key store reloads every KEYS_CACHE_TTL seconds: a new object, the same keys.
  state.jwks = { keys: [{ ...a.jwk }, { ...b.jwk }] };
  t.ok(await verify(byA));
  t.equal(verified.size, 2, 'the same keys: still remembered');
  // k1 retired immediately: its tokens are refused at once although they were remembered.
  state.jwks = { keys: [b.jwk] };
  t.equal(await verify(byA), null, "a retired key's remembered token is refused");
  t.ok(await verify(byB), 'the remaining key still verifies');
  t.equal(verified.size, 1);
});

t.test('the memory is bounded; tokens beyond it still verify', async (t) => {
  const a = await signer('k1');
  const { verified, verify, nowSeconds } = setup([a.jwk], 2);
  const tokens = await Promise.all(['u1', 'u2', 'u3'].map((sub) => token(a, nowSeconds(), 60, sub)));
  for (const at of tokens) t.ok(await verify(at));
  t.equal(verified.size, 2);
  for (const [i, at] of tokens.entries()) t.equal((await verify(at))?.sub, `u${i + 1}`);
});

t.test('a remembered payload cannot be changed through an answer', async (t) => {
  const a = await signer('k1');
  const { verify, nowSeconds } = setup([a.jwk]);
  const issued = await issueAccessToken(a, {
    issuer: ISSUER,
    subject: 'user-1',
    clientId: 'client-1',
    audience: ['https://api.example', 'https://other.example'],
    scopes: ['read'],
    ttlSeconds: 60,
    now: nowSeconds(),
  });
  const first = await verify(issued.token);
  t.throws(() => (first!.aud as string[]).push('https://evil.example'));
  first!.sub = 'someone-else';
  const second = await verify(issued.token);
  t.same(second?.aud, ['https://api.example', 'https://other.example']);
  t.equal(second?.sub, 'user-1');
});

t.test(
  'a memory shared by verifiers of different keys never vouches for a key the other does not publish',
  async (t) => {
    const a = await signer('k1');
    const b = await signer('k2');
    const shared = new TtlCache<RememberedToken>(16);
    const options = { issuer: ISSUER, clockSkew: 5, verified: shared };
    const byA = accessTokenVerifier(() => ({ keys: [a.jwk] }), options);
    const byB = accessTokenVerifier(() => ({ keys: [b.jwk] }), options);
    const at = await token(a, Math.floor(Date.now() / 1000));
    t.equal(await byB('not.a.token'), null); // each verifier has seen its keys once (a first sight empties the memory)
    t.ok(await byA(at));
    t.equal(shared.size, 1);
    t.equal(await byB(at), null, 'remembered under k1, which the second verifier does not publish');
  },
);

t.test('a signature spelled another way (the spare bits of its last character) is refused', async (t) => {
  const a = await signer('k1');
  const { verified, verify, nowSeconds } = setup([a.jwk]);
  const at = await token(a, nowSeconds());
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(at.at(-1)!);
  // 64 bytes are 86 characters with 4 bits to spare, zero in the canonical spelling.
  t.equal(last & 0b1111, 0);
  const respelled = at.slice(0, -1) + alphabet[last | 0b0101]!;
  t.same(
    Buffer.from(respelled.split('.')[2]!, 'base64url'),
    Buffer.from(at.split('.')[2]!, 'base64url'),
    'the same signature bytes',
  );
  t.equal(await verify(respelled), null);
  t.ok(await verify(at));
  t.equal(await verify(respelled), null, 'also once the canonical spelling is remembered');
  t.equal(verified.size, 1);
});
