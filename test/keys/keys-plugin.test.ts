import { randomBytes } from 'node:crypto';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { openDatabase } from '../../src/db/connect.js';
import { migrateUp } from '../../src/db/migrate.js';
import { toOAuthError } from '../../src/http/errors.js';
import { DomainError } from '../../src/lib/errors.js';
import { KeyStore } from '../../src/services/signing-keys/key-store.js';
import { buildTestApp, testConfig, testDatabase } from '../helper.js';
import { silent } from './fixtures/keys.js';

t.test('an app whose database is not migrated yet starts, reports why it is not ready, and recovers', async (t) => {
  const config = testConfig({ AUTO_MIGRATE: 'false', DATABASE_SCHEMA: `keys_pending_${Date.now()}` });
  const database = await openDatabase(config);
  t.teardown(async () => {
    if (database.kind === 'postgres')
      await database.root.schema.dropSchema(config.database.schema).ifExists().cascade().execute();
    await database.close();
  });
  const app = await buildApp(config, { database });
  t.teardown(() => app.close());

  t.match(app.keys.readiness(), /^no signing key loaded: .*signing_keys/, 'the reason names the missing table');
  let error: unknown;
  try {
    app.keys.current();
  } catch (err) {
    error = err;
  }
  // The key store is below the protocol: it refuses with a DomainError, which the edge answers as 503.
  t.type(error, DomainError, 'signing before a key is loaded is a domain refusal, not a crash');
  t.match(error, { code: 'unavailable' });
  t.match(toOAuthError(error), { error: 'temporarily_unavailable', status: 503 });
  t.same(app.keys.jwks(), { keys: [] });

  await migrateUp(database.root, config.database.schema);
  await app.keys.refresh();
  t.equal(app.keys.readiness(), null);
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 200);
  t.match(res.json().checks, { migrations: 'ok', signing_keys: 'ok' });
  t.equal(app.keys.jwks().keys.length, 1);
});

t.test(
  "a running app picks up another replica's change within the cache period; a closed one stops refreshing",
  async (t) => {
    const database = await testDatabase();
    await migrateUp(database.root, testConfig().database.schema);
    const config = testConfig({ KEY_CACHE_TTL_SECONDS: '1' });
    const running = await buildApp(config, { database });
    t.teardown(() => running.close());
    const closed = await buildApp(config, { database });
    const before = running.keys.current().kid;
    t.equal(closed.keys.current().kid, before);
    await closed.close();

    const admin = await KeyStore.open(database, config, silent, { background: false });
    const { signing } = await admin.retire(before, { immediately: true });
    await admin.close();

    const deadline = Date.now() + 5000;
    while (running.keys.current().kid === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    t.equal(running.keys.current().kid, signing?.kid, 'the running app signs with the new key');
    t.notOk(
      running.keys.jwks().keys.some((k) => k.kid === before),
      'and no longer publishes the pulled one',
    );
    t.equal(closed.keys.current().kid, before, 'the closed app did not refresh');
  },
);

t.test('the signing key age is a metric on the admin listener', async (t) => {
  const app = await buildTestApp(t, { ADMIN_PORT: '4999', ADMIN_TOKEN: randomBytes(32).toString('base64url') });
  const since = app.keys.activeSince();
  t.ok(since, 'a generated key knows when it started signing');
  const text = await app.metrics!.metrics();
  const age = /^gatehouse_signing_key_age_seconds (\S+)$/m.exec(text);
  t.ok(age, 'gatehouse_signing_key_age_seconds is exported');
  t.ok(Number(age![1]) >= 0 && Number(age![1]) < 3600, 'the age of a key generated for this test');
});
