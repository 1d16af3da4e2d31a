import { sql } from 'kysely';
import t from 'tap';
import type { NewClientRow } from '../../src/db/tables/client.table.js';
import { hashSecret } from '../../src/oauth/secrets.js';
import {
  createClient,
  deleteClient,
  findClientById,
  listClients,
  rotateClientSecret,
  setClientDisabled,
  touchClientLastUsed,
  updateClient,
} from '../../src/repositories/client.repository.js';
import { migratedDatabase, unique } from '../fixtures/clients.js';

function newClient(clientId: string, overrides: Partial<NewClientRow> = {}): NewClientRow {
  return {
    client_id: clientId,
    secret_hash: hashSecret('s'),
    name: 'Repo client',
    redirect_uris: ['https://app.example.com/cb', 'com.example.app:/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scopes: ['read', 'write'],
    resources: ['https://api.example.com'],
    application_type: 'web',
    client_uri: 'https://app.example.com',
    logo_uri: null,
    policy_uri: null,
    tos_uri: null,
    source: 'admin',
    secret_rotated_at: null,
    last_used_at: null,
    disabled_at: null,
    ...overrides,
  };
}

t.test('create, find and list round-trip every column, arrays included', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  const created = await createClient(db, newClient(id, { contacts: ['a@example.com'], default_scopes: ['read'] }));
  t.equal(created.client_id, id);
  t.same(
    created.redirect_uris,
    ['https://app.example.com/cb', 'com.example.app:/cb'],
    'text[] comes back as a JS array',
  );
  t.same(created.post_logout_redirect_uris, [], 'defaults apply');
  t.same(created.default_scopes, ['read']);
  t.same(created.contacts, ['a@example.com']);
  t.equal(created.skip_consent, false);
  t.ok(created.created_at instanceof Date);
  t.ok(created.updated_at instanceof Date);

  const found = await findClientById(db, id);
  t.same(found, created);
  t.equal(await findClientById(db, unique('missing')), undefined);
  t.ok((await listClients(db)).some((c) => c.client_id === id));
});

t.test('the table refuses a secret on a public client and a confidential client without one', async (t) => {
  const { db } = await migratedDatabase();
  await t.rejects(
    createClient(db, newClient(unique(), { token_endpoint_auth_method: 'none' })),
    /clients_secret_matches_auth_method/,
  );
  await t.rejects(createClient(db, newClient(unique(), { secret_hash: null })), /clients_secret_matches_auth_method/);
});

t.test('update changes columns and updated_at; a missing client gives undefined', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  const created = await createClient(db, newClient(id, { updated_at: new Date(Date.now() - 60_000) }));
  const updated = await updateClient(db, id, { name: 'Renamed', scopes: ['read'] });
  t.equal(updated?.name, 'Renamed');
  t.same(updated?.scopes, ['read']);
  t.ok(updated!.updated_at > created.updated_at, 'updated_at moves');
  t.equal(updated!.created_at.getTime(), created.created_at.getTime(), 'created_at stays');
  t.equal(await updateClient(db, unique('missing'), { name: 'x' }), undefined);
});

t.test('rotateSecret replaces the hash and stamps secret_rotated_at', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  await createClient(db, newClient(id));
  const rotated = await rotateClientSecret(db, id, hashSecret('new'));
  t.equal(rotated?.secret_hash, hashSecret('new'));
  t.ok(rotated?.secret_rotated_at instanceof Date);
  t.equal(await rotateClientSecret(db, unique('missing'), hashSecret('x')), undefined);
});

t.test('setDisabled keeps the first disabling time and clears it on enable', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  await createClient(db, newClient(id));
  const first = await setClientDisabled(db, id, true);
  t.ok(first?.disabled_at instanceof Date);
  const again = await setClientDisabled(db, id, true);
  t.equal(again?.disabled_at?.getTime(), first?.disabled_at?.getTime(), 'disabling twice keeps the original time');
  t.equal((await setClientDisabled(db, id, false))?.disabled_at, null);
  t.equal(await setClientDisabled(db, unique('missing'), true), undefined);
});

t.test('touchLastUsed writes at most once per interval', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  await createClient(db, newClient(id));
  await touchClientLastUsed(db, id);
  const first = (await findClientById(db, id))!.last_used_at;
  t.ok(first instanceof Date);
  await touchClientLastUsed(db, id);
  t.equal(
    (await findClientById(db, id))!.last_used_at?.getTime(),
    first!.getTime(),
    'a second touch within the hour writes nothing',
  );
  await db
    .updateTable('clients')
    .set({ last_used_at: sql<Date>`now() - interval '2 hours'` })
    .where('client_id', '=', id)
    .execute();
  await touchClientLastUsed(db, id);
  t.ok((await findClientById(db, id))!.last_used_at! > first!, 'an old mark is refreshed');
});

t.test('delete removes the client and says whether it existed', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  await createClient(db, newClient(id));
  t.equal(await deleteClient(db, id), true);
  t.equal(await findClientById(db, id), undefined);
  t.equal(await deleteClient(db, id), false);
});

t.test('repository functions work inside a transaction', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique();
  await t.rejects(
    db.transaction().execute(async (trx) => {
      await createClient(trx, newClient(id));
      t.ok(await findClientById(trx, id), 'visible inside');
      throw new Error('roll back');
    }),
    /roll back/,
  );
  t.equal(await findClientById(db, id), undefined, 'rolled back');
});
