import t from 'tap';
import { ClientMetadataError } from '../../src/oauth/client-metadata.js';
import { verifySecret } from '../../src/oauth/secrets.js';
import { findClientById, updateClient } from '../../src/repositories/client.repository.js';
import { ClientServiceError, createClients } from '../../src/services/clients/index.js';
import { TtlCache } from '../../src/lib/ttl-cache.js';
import {
  clientConfig,
  countingDb,
  machineClient,
  migratedDatabase,
  publicClient,
  unique,
} from '../fixtures/clients.js';

/** A service on a query-counting database with a hand-driven clock (TTL 30 s). */
async function setup(options: { maxEntries?: number } = {}) {
  const { db } = await migratedDatabase();
  const counting = countingDb(db);
  const clock = { now: 1_000_000 };
  const service = createClients(counting.db, clientConfig({ CLIENT_CACHE_TTL_SECONDS: '30' }), {
    now: () => clock.now,
    ...options,
  });
  return { db, service, clock, selects: () => counting.counts.get('SelectQueryNode') ?? 0, total: counting.total };
}

t.test('create returns the client and its secret once; only the hash is stored', async (t) => {
  const { db, service } = await setup();
  const { client, secret } = await service.admin.create(machineClient({ name: 'Reporting job' }));
  t.equal(client.name, 'Reporting job');
  t.equal(client.source, 'admin');
  t.match(client.client_id, /^[A-Za-z0-9_-]{43}$/, 'a random 256-bit id');
  t.match(secret, /^[A-Za-z0-9_-]{43}$/);
  const row = await findClientById(db, client.client_id);
  t.not(row?.secret_hash, secret, 'the secret itself is not stored');
  t.ok(verifySecret(secret!, row!.secret_hash), 'its hash is');

  const pub = await service.admin.create(publicClient());
  t.equal(pub.secret, null, 'a public client gets no secret');
  t.equal(pub.client.secret_hash, null);
});

t.test('create validates metadata and refuses a taken or malformed client_id', async (t) => {
  const { service } = await setup();
  const invalid = await service.admin
    .create({ name: 'x', redirect_uris: ['http://evil.example/cb'] })
    .catch((err: unknown) => err);
  t.ok(invalid instanceof ClientMetadataError);
  t.match(invalid, { field: 'redirect_uris[0]' });
  const id = unique('chosen');
  await service.admin.create(machineClient(), { clientId: id });
  await t.rejects(service.admin.create(machineClient(), { clientId: id }), {
    name: 'ClientServiceError',
    code: 'conflict',
    message: `client ${id} already exists`,
  });
  await t.rejects(service.admin.create(machineClient(), { clientId: 'tab\there' }), {
    code: 'conflict',
    message: /visible ASCII/,
  });
});

t.test('a cached client is served with no database query', async (t) => {
  const { service, selects, total } = await setup();
  const { client } = await service.admin.create(machineClient());
  const afterCreate = selects();
  const first = await service.registry.get(client.client_id);
  t.equal(first?.client_id, client.client_id);
  const before = total();
  for (let i = 0; i < 20; i++) t.equal((await service.registry.get(client.client_id))?.client_id, client.client_id);
  t.equal(total(), before, 'twenty cached reads ran no statement at all');
  t.equal(selects(), afterCreate + 1, 'one load in all');
});

t.test('a change made behind the cache is seen only after the TTL', async (t) => {
  const { db, service, clock } = await setup();
  const { client } = await service.admin.create(machineClient({ name: 'Before' }));
  t.equal((await service.registry.get(client.client_id))?.name, 'Before');
  // Another replica (or the CLI) changes the row directly.
  await updateClient(db, client.client_id, { name: 'After' });
  clock.now += 29_000;
  t.equal((await service.registry.get(client.client_id))?.name, 'Before', 'still cached inside the TTL');
  clock.now += 1_000;
  t.equal((await service.registry.get(client.client_id))?.name, 'After', 'reloaded once the TTL has passed');
});

t.test('changes made through the service are seen at once', async (t) => {
  const { service } = await setup();
  const { client } = await service.admin.create(machineClient({ name: 'One' }));
  await service.registry.get(client.client_id);
  await service.admin.update(client.client_id, { name: 'Two' });
  t.equal((await service.registry.get(client.client_id))?.name, 'Two', 'update');

  const cachedHash = (await service.registry.get(client.client_id))?.secret_hash;
  const { secret } = await service.admin.rotateSecret(client.client_id);
  const rotated = await service.registry.get(client.client_id);
  t.not(rotated?.secret_hash, cachedHash, 'rotate');
  t.ok(verifySecret(secret, rotated!.secret_hash));

  await service.admin.setDisabled(client.client_id, true);
  t.ok((await service.registry.get(client.client_id))?.disabled_at, 'disable');
  await service.admin.setDisabled(client.client_id, false);
  t.equal((await service.registry.get(client.client_id))?.disabled_at, null, 'enable');

  t.equal(await service.admin.delete(client.client_id), true);
  t.equal(await service.registry.get(client.client_id), undefined, 'delete');
});

t.test('another process sees a service change only after its TTL', async (t) => {
  const { service } = await setup();
  const other = await setup();
  const { client } = await service.admin.create(machineClient({ name: 'Old' }));
  t.equal((await other.service.registry.get(client.client_id))?.name, 'Old');
  await service.admin.update(client.client_id, { name: 'New' });
  t.equal((await other.service.registry.get(client.client_id))?.name, 'Old', 'the other replica keeps its copy');
  other.clock.now += 30_000;
  t.equal((await other.service.registry.get(client.client_id))?.name, 'New');
});

t.test('unknown ids are remembered briefly, and a service create clears that at once', async (t) => {
  const { service, clock, selects } = await setup();
  const id = unique('later');
  t.equal(await service.registry.get(id), undefined);
  t.equal(await service.registry.get(id), undefined);
  t.equal(selects(), 1, 'the second miss was answered from memory');
  clock.now += 5_000;
  t.equal(await service.registry.get(id), undefined);
  t.equal(selects(), 2, 'negative entries expire after a few seconds');
  await service.admin.create(machineClient(), { clientId: id });
  t.equal((await service.registry.get(id))?.client_id, id, 'created through the service: visible at once');
});

t.test('ids that cannot exist are refused without a query', async (t) => {
  const { service, total } = await setup();
  for (const id of ['', 'x'.repeat(256), 'new\nline', 'ünïcode']) t.equal(await service.registry.get(id), undefined);
  t.equal(total(), 0);
});

t.test('concurrent misses for one id share one query', async (t) => {
  const { service, selects } = await setup();
  const { client } = await service.admin.create(machineClient());
  const results = await Promise.all(Array.from({ length: 10 }, () => service.registry.get(client.client_id)));
  t.ok(results.every((r) => r?.client_id === client.client_id));
  t.equal(selects(), 2, 'one for create, one shared load');
});

t.test('a load racing with a change does not cache the old row', async (t) => {
  const { service } = await setup();
  const { client } = await service.admin.create(machineClient({ name: 'Racing' }));
  const loading = service.registry.get(client.client_id);
  await service.admin.update(client.client_id, { name: 'Changed' });
  await loading;
  t.equal((await service.registry.get(client.client_id))?.name, 'Changed');
});

t.test('the cache is bounded: the oldest entry makes room', async (t) => {
  const { service, selects } = await setup({ maxEntries: 2 });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await service.admin.create(machineClient())).client.client_id);
  const base = selects();
  for (const id of ids) await service.registry.get(id);
  t.equal(selects(), base + 3);
  await service.registry.get(ids[2]!);
  await service.registry.get(ids[1]!);
  t.equal(selects(), base + 3, 'the two newest are cached');
  await service.registry.get(ids[0]!);
  t.equal(selects(), base + 4, 'the oldest was evicted');

  const cache = new TtlCache<number>(3);
  for (let i = 0; i < 10_000; i++) cache.set(`random-${i}`, i, Number.MAX_SAFE_INTEGER);
  t.equal(cache.size, 3, 'random keys cannot grow memory');
  t.equal(cache.get('random-9999', 0), 9999);
  t.equal(cache.get('random-0', 0), undefined);
});

t.test('cached clients are frozen, so no caller can change what others see', async (t) => {
  const { service } = await setup();
  const { client } = await service.admin.create(machineClient({ scopes: ['read'] }));
  const cached = (await service.registry.get(client.client_id))!;
  t.throws(() => {
    (cached as { name: string }).name = 'x';
  });
  t.throws(() => cached.scopes.push('admin'));
});

t.test('update re-validates the whole client and manages the secret with the auth method', async (t) => {
  const { service, db } = await setup();
  const { client } = await service.admin.create(publicClient());
  const made = await service.admin.update(client.client_id, { token_endpoint_auth_method: 'client_secret_post' });
  t.ok(made.secret, 'a public client made confidential gets a secret, returned once');
  t.ok(verifySecret(made.secret!, (await findClientById(db, client.client_id))!.secret_hash));
  t.ok(made.client.secret_rotated_at);

  const same = await service.admin.update(client.client_id, { token_endpoint_auth_method: 'client_secret_basic' });
  t.equal(same.secret, null, 'basic <-> post keeps the secret');
  t.equal(same.client.secret_hash, made.client.secret_hash);

  const back = await service.admin.update(client.client_id, { token_endpoint_auth_method: 'none' });
  t.equal(back.client.secret_hash, null, 'made public: the secret is dropped');

  const grants = await service.admin.update(client.client_id, { grant_types: ['authorization_code'] });
  t.same(grants.client.response_types, ['code'], 'response types follow the grant types');

  await t.rejects(service.admin.update(client.client_id, { redirect_uris: ['ftp://x.example/cb'] }), {
    name: 'ClientMetadataError',
    field: 'redirect_uris[0]',
  });
  await t.rejects(service.admin.update(client.client_id, { grant_types: ['client_credentials'] }), {
    name: 'ClientMetadataError',
    field: 'grant_types',
    message: /confidential/,
  });
  await t.rejects(service.admin.update(unique('missing'), { name: 'x' }), {
    name: 'ClientServiceError',
    code: 'not_found',
  });
});

t.test('rotating a public client is refused; unknown clients are not found', async (t) => {
  const { service } = await setup();
  const { client } = await service.admin.create(publicClient());
  await t.rejects(service.admin.rotateSecret(client.client_id), { code: 'conflict', message: /public/ });
  const missing = await service.admin.rotateSecret(unique('missing')).catch((err: unknown) => err);
  t.ok(missing instanceof ClientServiceError);
  t.match(missing, { code: 'not_found', message: /^no such client: missing-/ });
  await t.rejects(service.admin.setDisabled(unique('missing'), true), {
    name: 'ClientServiceError',
    code: 'not_found',
  });
  t.equal(await service.admin.delete(unique('missing')), false);
});

t.test('last use is recorded in the background at most once an hour, and failures are only logged', async (t) => {
  const { db } = await migratedDatabase();
  const clock = { now: Date.now() };
  const config = clientConfig();
  const counting = countingDb(db);
  const service = createClients(counting.db, config, { now: () => clock.now });
  const { client } = await service.admin.create(machineClient());
  const updatesBefore = counting.counts.get('UpdateQueryNode') ?? 0;
  service.usage.markUsed(client.client_id);
  t.equal(counting.counts.get('UpdateQueryNode') ?? 0, updatesBefore, "nothing is written on the caller's path");
  await service.usage.drain();
  const first = (await findClientById(db, client.client_id))!.last_used_at;
  t.ok(first instanceof Date, 'written afterwards');
  for (let i = 0; i < 5; i++) service.usage.markUsed(client.client_id);
  await service.usage.drain();
  t.equal(counting.counts.get('UpdateQueryNode'), updatesBefore + 1, 'one write in the hour');
  clock.now += 3_600_000;
  service.usage.markUsed(client.client_id);
  await service.usage.drain();
  t.equal(counting.counts.get('UpdateQueryNode'), updatesBefore + 2, 'the next hour writes again');

  const logged: unknown[] = [];
  const broken = createClients(
    db.withPlugin({
      transformQuery() {
        throw new Error('database down');
      },
      async transformResult({ result }) {
        return result;
      },
    }),
    config,
    { log: { debug: (obj) => logged.push(obj) } },
  );
  broken.usage.markUsed(client.client_id);
  await broken.usage.drain();
  t.equal(logged.length, 1, 'the failure is logged at debug and swallowed');
  t.match(logged[0], { clientId: client.client_id, err: { message: 'database down' } });
});
