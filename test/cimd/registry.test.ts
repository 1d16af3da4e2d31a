import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { FetchedDocument } from '../../src/oauth/client-id-document-fetch.js';
import { ClientIdDocumentFetchError } from '../../src/oauth/client-id-document-fetch.js';
import { deleteClient, findClientById, setClientDisabled } from '../../src/repositories/client.repository.js';
import { createClients } from '../../src/services/clients/index.js';
import { clientConfig, countingDb, migratedDatabase, unique } from '../fixtures/clients.js';
import { CERT_FILE, clientIdDocument } from './document-server.js';

const CIMD = { CIMD_ENABLED: 'true', CIMD_ALLOW_PRIVATE_ADDRESSES: 'true' };

/** A service whose fetches are answered by `answer` (no network), with a hand-driven clock. */
async function setup(
  answer: (url: URL) => Promise<FetchedDocument>,
  options: { maxConcurrentFetches?: number; env?: Record<string, string> } = {},
) {
  const { db } = await migratedDatabase();
  const counting = countingDb(db);
  const clock = { now: 1_000_000 };
  const fetched: string[] = [];
  const logs: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const service = createClients(counting.db, clientConfig({ ...CIMD, ...options.env }), {
    now: () => clock.now,
    fetchDocument: (url) => {
      fetched.push(url.href);
      return answer(url);
    },
    log: { debug: () => undefined, info: (obj, msg) => logs.push({ obj: obj as Record<string, unknown>, msg }) },
    ...(options.maxConcurrentFetches ? { maxConcurrentFetches: options.maxConcurrentFetches } : {}),
  });
  return { db, service, clock, fetched, logs, selects: () => counting.counts.get('SelectQueryNode') ?? 0 };
}

const doc = (url: URL, headers: Record<string, string> = {}): FetchedDocument => ({
  body: JSON.stringify(clientIdDocument(url.href)),
  headers,
});
const idFor = (name: string) => `https://app.example.com/${unique(name)}.json`;

t.test('a cached document expires after its max-age, clamped to the bounds', async (t) => {
  const { service, clock, fetched } = await setup(async (url) =>
    doc(url, url.pathname.includes('short') ? { 'cache-control': 'max-age=5' } : { 'cache-control': 'max-age=120' }),
  );
  const id = idFor('long');
  await service.registry.resolveForAuthorization(id);
  clock.now += 119_000;
  await service.registry.resolveForAuthorization(id);
  t.equal(fetched.length, 1, 'fresh for max-age');
  clock.now += 2_000;
  await service.registry.resolveForAuthorization(id);
  t.equal(fetched.length, 2, 'fetched again once stale');

  const short = idFor('short');
  await service.registry.resolveForAuthorization(short);
  clock.now += 30_000;
  await service.registry.resolveForAuthorization(short);
  t.equal(fetched.filter((u) => u === short).length, 1, 'max-age=5 is held for CIMD_CACHE_MIN_SECONDS (60)');
});

t.test(
  'a row is cached for CLIENT_CACHE_TTL_SECONDS, not the document lifetime: a disable on another replica shows, with no refetch',
  async (t) => {
    const { db, service, clock, fetched } = await setup(async (url) => doc(url, { 'cache-control': 'max-age=3600' }));
    const id = idFor('replica');
    t.equal((await service.registry.resolveForAuthorization(id)).client?.disabled_at, null);
    const stored = await findClientById(db, id);
    t.equal(
      stored?.document_expires_at?.getTime(),
      clock.now + 3600_000,
      'the document lifetime is stored with the row',
    );

    await setClientDisabled(db, id, true); // an operator, through another replica
    clock.now += 29_000;
    t.equal(
      (await service.registry.resolveForAuthorization(id)).client?.disabled_at,
      null,
      'cached for up to CLIENT_CACHE_TTL_SECONDS (30)',
    );
    clock.now += 2_000;
    t.not((await service.registry.resolveForAuthorization(id)).client?.disabled_at, null, 'then re-read: disabled');
    t.equal(fetched.length, 1, 'the re-read did not fetch the document, still fresh');

    await setClientDisabled(db, id, false);
    const replica = createClients(db, clientConfig(CIMD), {
      now: () => clock.now,
      fetchDocument: async (url) => (fetched.push(url.href), doc(url)),
    });
    t.ok(
      (await replica.registry.resolveForAuthorization(id)).client,
      'another replica (or a restart) uses the stored row',
    );
    t.equal(fetched.length, 1, 'without fetching while document_expires_at is ahead');

    clock.now += 3600_000;
    t.ok((await service.registry.resolveForAuthorization(id)).client);
    t.equal(fetched.length, 2, 'fetched again once the document is due');
  },
);

t.test('get never fetches: an unseen client_id URL is unknown and nothing is stored', async (t) => {
  const { db, service, fetched } = await setup(async (url) => doc(url));
  for (let i = 0; i < 3; i += 1) {
    const id = idFor(`unseen-${i}`);
    t.equal(await service.registry.get(id), undefined);
    t.equal(await findClientById(db, id), undefined, 'no row');
  }
  t.same(fetched, [], 'no request left this server');
});

t.test(
  'get answers a metadata-document client from its stored row, even once the document is due, and honours disable and delete',
  async (t) => {
    const { db, service, clock, fetched } = await setup(async (url) => doc(url, { 'cache-control': 'max-age=60' }));
    const id = idFor('stored');
    t.ok((await service.registry.resolveForAuthorization(id)).client, '/authorize stores it');
    t.equal(fetched.length, 1);
    clock.now += 3600_000; // the document is long due, and the cached row expired
    t.equal((await service.registry.get(id))?.client_id, id, 'the token endpoint keeps working from the stored row');
    t.equal(fetched.length, 1, 'without fetching');

    await setClientDisabled(db, id, true);
    clock.now += 31_000;
    t.not((await service.registry.get(id))?.disabled_at, null, 'a disable shows once the row cache expires');
    t.match(
      await service.registry.resolveForAuthorization(id),
      { client: { disabled_at: Date } },
      '/authorize gets the disabled row (and refuses it)',
    );
    t.equal(fetched.length, 1, 'no document is fetched for a disabled client');

    await deleteClient(db, id);
    clock.now += 31_000;
    t.equal(await service.registry.get(id), undefined, 'a delete shows too');
    t.equal(fetched.length, 1);
  },
);

t.test('ordinary client ids never take the fetch path', async (t) => {
  const { service, fetched, selects } = await setup(async (url) => doc(url));
  const before = selects();
  t.same(await service.registry.resolveForAuthorization('some-random-client-id'), { client: undefined, problem: null });
  t.equal(selects() - before, 1, 'one query');
  t.same(fetched, []);
  t.match(await service.registry.resolveForAuthorization('http://app.example.com/client.json'), {
    client: undefined,
    problem: /must use the https scheme/,
  });
  t.same(fetched, [], 'http is never fetched');
});

t.test('fetch failures are logged at info with the reason and no secret, and never cached', async (t) => {
  let fail = true;
  const { service, fetched, logs } = await setup(async (url) => {
    if (fail) throw new ClientIdDocumentFetchError('the server answered 500, not 200 (draft section 5)');
    return doc(url);
  });
  const id = idFor('flaky');
  t.match(await service.registry.resolveForAuthorization(id), { client: undefined, problem: /answered 500/ });
  t.match(logs, [{ msg: 'client metadata document refused', obj: { clientId: id, reason: /answered 500/ } }]);
  fail = false;
  t.ok((await service.registry.resolveForAuthorization(id)).client);
  t.equal(fetched.length, 2);
});

t.test('fetches in flight are capped per process', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { service, fetched } = await setup(
    async (url) => {
      await gate;
      return doc(url);
    },
    { maxConcurrentFetches: 2 },
  );
  const first = [idFor('a'), idFor('b')].map((id) => service.registry.resolveForAuthorization(id));
  while (fetched.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  t.match(await service.registry.resolveForAuthorization(idFor('c')), {
    client: undefined,
    problem: /too many are being fetched/,
  });
  release();
  const [a, b] = await Promise.all(first);
  t.ok(a!.client && b!.client);
  t.ok((await service.registry.resolveForAuthorization(idFor('d'))).client, 'room again once they finish');
});

t.test('CIMD_CA_FILE is checked at start', async (t) => {
  const { db } = await migratedDatabase();
  t.throws(
    () => createClients(db, clientConfig({ ...CIMD, CIMD_CA_FILE: '/nonexistent/ca.pem' })),
    /CIMD_CA_FILE: cannot read \/nonexistent\/ca.pem \(ENOENT\)/,
  );
  const junk = join(tmpdir(), `gatehouse-ca-${unique()}.pem`);
  writeFileSync(junk, 'not a certificate');
  t.throws(() => createClients(db, clientConfig({ ...CIMD, CIMD_CA_FILE: junk })), /does not hold PEM certificates/);
  t.doesNotThrow(() => createClients(db, clientConfig({ ...CIMD, CIMD_CA_FILE: CERT_FILE })));
});

t.test(
  'a metadata-document client cannot be edited or given a secret by an admin; disable and delete still work',
  async (t) => {
    const { service } = await setup(async (url) => doc(url));
    const id = idFor('admin-edit');
    const { client } = await service.registry.resolveForAuthorization(id);
    t.ok(client, 'resolved');
    await t.rejects(service.admin.update(id, { name: 'Renamed' }), { code: 'conflict', message: /metadata document/ });
    await t.rejects(service.admin.update(id, { token_endpoint_auth_method: 'client_secret_basic' }), {
      code: 'conflict',
      message: /metadata document/,
    });
    await t.rejects(service.admin.rotateSecret(id), { code: 'conflict', message: /metadata document/ });
    const unchanged = await service.admin.find(id);
    t.equal(unchanged?.name, client?.name, 'the name is the document’s');
    t.equal(unchanged?.secret_hash, null, 'still no secret');
    t.ok((await service.admin.setDisabled(id, true)).disabled_at, 'disable works');
    t.ok(await service.admin.delete(id), 'delete works');
  },
);
