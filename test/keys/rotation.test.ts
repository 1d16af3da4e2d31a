import { type JSONWebKeySet, SignJWT, createLocalJWKSet, jwtVerify } from 'jose';
import t from 'tap';
import { KeyOperationError } from '../../src/keys/errors.js';
import { type KeyStore, type SigningKey, KeyStore as Store } from '../../src/services/signing-keys/key-store.js';
import { testConfig } from '../helper.js';
import { emptyKeyTable, fetchJwks, jwksApp, kids, silent, testClock } from './fixtures/keys.js';

// Rotation delay 600 s; a retired key stays 300 (token TTL) + 30 (skew) + 20 (cache TTL) = 350 s.
const ENV = {
  KEY_ROTATION_DELAY_SECONDS: '600',
  ACCESS_TOKEN_TTL_SECONDS: '300',
  CLOCK_SKEW_SECONDS: '30',
  KEY_CACHE_TTL_SECONDS: '20',
};
const RETIRED_FOR_MS = 350_000;

async function signAt(signer: SigningKey, at: Date, ttlSeconds = 300): Promise<string> {
  const iat = Math.floor(at.getTime() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid })
    .setSubject('s')
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(signer.key);
}

async function verifiesAt(token: string, set: JSONWebKeySet, at: Date): Promise<boolean> {
  try {
    await jwtVerify(token, createLocalJWKSet(set), { currentDate: at });
    return true;
  } catch {
    return false;
  }
}

async function states(store: KeyStore): Promise<Record<string, string>> {
  return Object.fromEntries((await store.list()).map((k) => [k.kid, k.state]));
}

t.test(
  'a rotated-in key is published before it signs, then takes over; the old key stays until its tokens expire',
  async (t) => {
    const handle = await emptyKeyTable();
    const config = testConfig(ENV);
    const clock = testClock();
    const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
    t.teardown(() => store.close());
    const app = await jwksApp(t, store, config);
    const oldSigner = store.current();

    const next = await store.rotate();
    t.match(next, { state: 'next', published: true, alg: 'ES256' });
    t.equal(next.activateAt?.getTime(), clock.now().getTime() + 600_000, 'activates after KEY_ROTATION_DELAY_SECONDS');
    t.same(kids(await fetchJwks(app)), [oldSigner.kid, next.kid].sort(), 'the next key is in the JWKS at once');
    t.equal(store.current().kid, oldSigner.kid, 'but does not sign yet');
    await t.rejects(store.rotate(), KeyOperationError, 'a second rotation waits for the first');

    // A replica that loaded the keys before the rotation.
    const replica = await Store.open(handle, config, silent, { now: clock.now, background: false });
    t.teardown(() => replica.close());

    clock.advance(599);
    await store.refresh();
    t.equal(store.current().kid, oldSigner.kid, 'still the old key one second before activate_at');
    const lastOldToken = await signAt(store.current(), clock.now());

    clock.advance(1);
    await store.refresh();
    const promotedAt = clock.now();
    t.equal(store.current().kid, next.kid, 'the next key signs from activate_at');
    t.same(await states(store), { [oldSigner.kid]: 'retired', [next.kid]: 'active' });
    const old = (await store.list()).find((k) => k.kid === oldSigner.kid)!;
    t.equal(old.retiredAt?.getTime(), promotedAt.getTime());
    t.equal(
      old.expiresAt?.getTime(),
      promotedAt.getTime() + RETIRED_FOR_MS,
      'expires after token TTL + clock skew + cache TTL',
    );

    // The replica still signs with the old key until its cache refreshes: those tokens must verify too.
    t.equal(replica.current().kid, oldSigner.kid, 'a stale replica keeps the old key until it refreshes');
    clock.advance(19);
    const staleReplicaToken = await signAt(replica.current(), clock.now());
    await replica.refresh();
    t.equal(replica.current().kid, next.kid, 'and picks up the new key on refresh');
    t.same(replica.jwks(), store.jwks(), 'both replicas publish the same set');

    const newToken = await signAt(store.current(), clock.now());
    let set = await fetchJwks(app);
    t.same(kids(set), [oldSigner.kid, next.kid].sort());
    t.ok(await verifiesAt(newToken, set, clock.now()), 'tokens of the new key verify');
    t.ok(await verifiesAt(lastOldToken, set, clock.now()), 'tokens of the old key still verify');

    // Just before expires_at: the old key is still published, and the stale replica's last token is still valid.
    clock.advance(330);
    await store.refresh();
    set = await fetchJwks(app);
    t.ok(
      set.keys.some((k) => k.kid === oldSigner.kid),
      'the old key is still published just before expires_at',
    );
    const staleExp = new Date(promotedAt.getTime() + (19 + 300) * 1000);
    t.ok(
      await verifiesAt(staleReplicaToken, set, new Date(staleExp.getTime() - 1000)),
      "the stale replica's last token verifies until its own exp",
    );

    clock.advance(1);
    await store.refresh();
    set = await fetchJwks(app);
    t.same(kids(set), [next.kid], 'the old key leaves the JWKS at expires_at');
    t.notOk(await verifiesAt(lastOldToken, set, new Date(promotedAt.getTime() + 1000)), 'its tokens no longer verify');
    t.same(
      await states(store),
      { [oldSigner.kid]: 'retired', [next.kid]: 'active' },
      'the row stays (for the janitor)',
    );
    t.equal((await store.list()).find((k) => k.kid === oldSigner.kid)?.published, false);
  },
);

t.test('retiring the active key hands over to the pending key at once; --immediately unpublishes it', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig(ENV);
  const clock = testClock();
  const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
  t.teardown(() => store.close());
  const app = await jwksApp(t, store, config);
  const compromised = store.current().kid;
  const next = await store.rotate();

  const result = await store.retire(compromised, { immediately: true });
  t.match(result.retired, { kid: compromised, state: 'retired', published: false });
  t.equal(result.retired.expiresAt?.getTime(), clock.now().getTime());
  t.match(result.signing, { kid: next.kid, state: 'active' });
  t.equal(store.current().kid, next.kid, 'the pending key signs now, not at its activate_at');
  t.same(kids(await fetchJwks(app)), [next.kid], 'the compromised key left the JWKS at once');
});

t.test(
  'the active key retires only immediately (compromise): otherwise rotate, so no key signs before it is published',
  async (t) => {
    const handle = await emptyKeyTable();
    const config = testConfig(ENV);
    const clock = testClock();
    const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
    t.teardown(() => store.close());
    const app = await jwksApp(t, store, config);
    const before = store.current();
    const token = await signAt(before, clock.now());

    await t.rejects(store.retire(before.kid), {
      name: 'KeyOperationError',
      message: new RegExp(`^${before.kid} is the active key: rotate first`),
    });
    t.equal(store.current().kid, before.kid, 'it keeps signing');
    t.ok(await verifiesAt(token, await fetchJwks(app), clock.now()), 'and its tokens keep verifying');

    const result = await store.retire(before.kid, { immediately: true });
    t.ok(result.signing && result.signing.kid !== before.kid, 'compromised: a new key signs at once');
    t.equal(store.current().kid, result.signing?.kid);
    t.equal(result.retired.published, false, 'and the compromised key left the JWKS');
    t.same(kids(await fetchJwks(app)), [result.signing!.kid]);
    t.equal((await store.list()).filter((k) => k.state === 'active').length, 1);
  },
);

t.test('a pending key can be withdrawn; unknown kids are refused', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig(ENV);
  const clock = testClock();
  const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
  t.teardown(() => store.close());
  const active = store.current().kid;
  const next = await store.rotate();
  const result = await store.retire(next.kid);
  t.match(
    result.retired,
    { kid: next.kid, state: 'retired', published: false },
    'it never signed, so it leaves the JWKS now',
  );
  t.equal(store.current().kid, active, 'the active key is untouched');
  t.same(
    store.jwks().keys.map((k) => k.kid),
    [active],
  );
  t.match(await store.rotate(), { state: 'next' }, 'a new rotation may start');
  await t.rejects(
    store.retire('no-such-kid'),
    new KeyOperationError('not_found', 'no signing key with kid no-such-kid'),
  );
});

t.test('replicas opening together on an empty table agree on exactly one generated key', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig({ SIGNING_ALG: 'RS256' });
  const stores = await Promise.all([1, 2, 3, 4].map(() => Store.open(handle, config, silent, { background: false })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const rows = await handle.db.selectFrom('signing_keys').select(['kid', 'state']).execute();
  t.equal(rows.length, 1, 'one key generated, not one per replica');
  t.equal(rows[0]!.state, 'active');
  t.same(new Set(stores.map((s) => s.current().kid)), new Set([rows[0]!.kid]), 'every replica signs with it');
});

t.test('replicas promoting a due key at the same moment leave one active key', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig(ENV);
  const clock = testClock();
  const stores = await Promise.all(
    [1, 2, 3].map(() => Store.open(handle, config, silent, { now: clock.now, background: false })),
  );
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const old = stores[0]!.current().kid;
  const next = await stores[0]!.rotate();
  clock.advance(600);
  await Promise.all(stores.map((s) => s.refresh()));
  const rows = await handle.db.selectFrom('signing_keys').selectAll().orderBy('kid').execute();
  t.same(Object.fromEntries(rows.map((r) => [r.kid, r.state])), { [old]: 'retired', [next.kid]: 'active' });
  t.same(new Set(stores.map((s) => s.current().kid)), new Set([next.kid]));
});

t.test('the background refresh promotes a due key without being asked', async (t) => {
  const handle = await emptyKeyTable();
  // Shorter than validation allows (delay must exceed max-age + cache TTL), to observe the wake-up
  // at activate_at within a test's time rather than waiting a whole cache period.
  const base = testConfig();
  const config = { ...base, keys: { ...base.keys, rotationDelay: 2, jwksMaxAge: 1, cacheTtl: 60 } };
  const store = await Store.open(handle, config, silent);
  t.teardown(() => store.close());
  const next = await store.rotate();
  // Another replica's store: it learns of the pending key on its first load and wakes up for it.
  const replica = await Store.open(handle, config, silent);
  t.teardown(() => replica.close());
  const deadline = Date.now() + 10_000;
  while (replica.current().kid !== next.kid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.equal(replica.current().kid, next.kid, 'promoted at activate_at, long before the 60 s cache period');
});

t.test('automatic rotation publishes the next key ahead of the interval, then hands over on time', async (t) => {
  const handle = await emptyKeyTable();
  // A key signs for 3600 s; its successor is published 600 s (the rotation delay) before that.
  const config = testConfig({ ...ENV, KEY_ROTATION_INTERVAL_SECONDS: '3600' });
  const clock = testClock();
  const start = clock.now().getTime();
  const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
  t.teardown(() => store.close());
  const first = store.current().kid;
  t.equal(store.activeSince()?.getTime(), start, 'the generated key signs from now');

  clock.advance(2999);
  await store.refresh();
  t.same(await states(store), { [first]: 'active' }, 'nothing to do before interval - delay');

  clock.advance(1);
  await store.refresh();
  const listed = await store.list();
  const next = listed.find((k) => k.state === 'next');
  t.ok(next, 'the next key is published at interval - delay');
  t.equal(next!.activateAt?.getTime(), start + 3600_000, 'and signs exactly when the interval is up');
  t.ok(
    store.jwks().keys.some((k) => k.kid === next!.kid),
    'it is in the JWKS a whole rotation delay before it signs',
  );
  t.equal(store.current().kid, first);
  await store.refresh();
  t.equal((await store.list()).filter((k) => k.state === 'next').length, 1, 'one next key, however often refreshed');

  clock.advance(600);
  await store.refresh();
  t.same(await states(store), { [first]: 'retired', [next!.kid]: 'active' }, 'handed over at the interval');
  t.equal(store.current().kid, next!.kid);
  t.equal(store.activeSince()?.getTime(), start + 3600_000);

  clock.advance(RETIRED_FOR_MS / 1000);
  await store.refresh();
  t.notOk(
    store.jwks().keys.some((k) => k.kid === first),
    'the old key leaves the JWKS once its tokens have expired',
  );

  clock.advance(3000 - RETIRED_FOR_MS / 1000);
  await store.refresh();
  t.equal((await store.list()).filter((k) => k.state === 'next').length, 1, 'and the cycle repeats');
});

t.test('replicas reaching the rotation moment together publish one next key', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig({ ...ENV, KEY_ROTATION_INTERVAL_SECONDS: '3600' });
  const clock = testClock();
  const stores = await Promise.all(
    [1, 2, 3].map(() => Store.open(handle, config, silent, { now: clock.now, background: false })),
  );
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  clock.advance(3000);
  await Promise.all(stores.map((s) => s.refresh()));
  const rows = await handle.db.selectFrom('signing_keys').select(['kid', 'state']).execute();
  t.equal(rows.filter((r) => r.state === 'next').length, 1, 'one next key, not one per replica');
  t.equal(rows.length, 2);
});

t.test('a server down past its rotation still publishes the next key before it signs', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig({ ...ENV, KEY_ROTATION_INTERVAL_SECONDS: '3600' });
  const clock = testClock();
  const before = await Store.open(handle, config, silent, { now: clock.now, background: false });
  const old = before.current().kid;
  await before.close();

  clock.advance(86_400 * 200);
  const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
  t.teardown(() => store.close());
  t.equal(store.current().kid, old, 'the old key still signs: verifiers have not seen a new one yet');
  const next = (await store.list()).find((k) => k.state === 'next');
  t.equal(next?.activateAt?.getTime(), clock.now().getTime() + 600_000, 'its successor signs after the rotation delay');
});

t.test('KEY_ROTATION_INTERVAL_SECONDS=0 turns automatic rotation off; a too-short interval is refused', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig({ ...ENV, KEY_ROTATION_INTERVAL_SECONDS: '0' });
  const clock = testClock();
  const store = await Store.open(handle, config, silent, { now: clock.now, background: false });
  t.teardown(() => store.close());
  const only = store.current().kid;
  clock.advance(86_400 * 3650);
  await store.refresh();
  t.same(await states(store), { [only]: 'active' }, 'ten years later, still the one key');

  t.throws(() => testConfig({ ...ENV, KEY_ROTATION_INTERVAL_SECONDS: '600' }), {
    message: /KEY_ROTATION_INTERVAL_SECONDS: must be 0 \(off\) or longer than KEY_ROTATION_DELAY_SECONDS/,
  });
  t.equal(testConfig().keys.rotationInterval, 7_776_000, 'on by default: 90 days');
});
