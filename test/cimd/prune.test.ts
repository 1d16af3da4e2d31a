import { sql } from 'kysely';
import t from 'tap';
import { clientsCommand, ClientsUsageError } from '../../src/cli/clients.js';
import type { Db } from '../../src/db/database.js';
import {
  createClient,
  deleteUnusedClientIdDocumentClients,
  findClientById,
  upsertClientIdDocumentClient,
} from '../../src/repositories/client.repository.js';
import { createClients } from '../../src/services/clients/index.js';
import { clientConfig, migratedDatabase, unique } from '../fixtures/clients.js';

const DAY = 86_400;
const CIMD = { CIMD_ENABLED: 'true' };
const METADATA = {
  name: 'Example MCP Client',
  redirect_uris: ['http://127.0.0.1:53123/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none' as const,
  scopes: [],
  resources: [],
  application_type: 'native' as const,
  client_uri: null,
  logo_uri: null,
  policy_uri: null,
  tos_uri: null,
};
const future = () => new Date(Date.now() + 3600_000);
const past = () => new Date(Date.now() - 3600_000);

/** A metadata-document client last fetched `fetchedDaysAgo` and last used at the token endpoint `usedDaysAgo` (null: never). */
async function documentClient(db: Db, fetchedDaysAgo: number, usedDaysAgo: number | null = null): Promise<string> {
  const clientId = `https://app.example.com/${unique('prune')}.json`;
  await upsertClientIdDocumentClient(db, clientId, METADATA, new Date());
  await db
    .updateTable('clients')
    .set({
      updated_at: sql<Date>`now() - make_interval(days => ${fetchedDaysAgo})`,
      last_used_at: usedDaysAgo === null ? null : sql<Date>`now() - make_interval(days => ${usedDaysAgo})`,
    })
    .where('client_id', '=', clientId)
    .execute();
  return clientId;
}

async function request(db: Db, clientId: string, expiresAt: Date): Promise<void> {
  await db
    .insertInto('authorization_requests')
    .values({
      id: unique('req'),
      client_id: clientId,
      redirect_uri: METADATA.redirect_uris[0]!,
      redirect_uri_given: true,
      state: null,
      scopes: [],
      resources: [],
      code_challenge: 'x'.repeat(43),
      prompt: null,
      max_age: null,
      login_hint: null,
      ui_locales: null,
      binding_hash: 'b',
      session_hash: null,
      expires_at: expiresAt,
      answered_at: null,
      completed_at: null,
    })
    .execute();
}

async function code(db: Db, clientId: string, expiresAt: Date, consumedAt: Date | null): Promise<void> {
  await db
    .insertInto('authorization_codes')
    .values({
      code_hash: unique('code'),
      client_id: clientId,
      redirect_uri: METADATA.redirect_uris[0]!,
      redirect_uri_given: true,
      code_challenge: 'x'.repeat(43),
      scopes: [],
      resources: [],
      sub: 'alice',
      auth_time: new Date(),
      expires_at: expiresAt,
      consumed_at: consumedAt,
      family_id: null,
    })
    .execute();
}

async function refreshToken(db: Db, clientId: string, expiresAt: Date, revokedAt: Date | null): Promise<void> {
  await db
    .insertInto('refresh_tokens')
    .values({
      token_hash: unique('rt'),
      family_id: unique('fam'),
      generation: 0,
      client_id: clientId,
      sub: 'alice',
      scopes: [],
      resources: [],
      auth_time: new Date(),
      expires_at: expiresAt,
      rotated_at: null,
      revoked_at: revokedAt,
    })
    .execute();
}

t.test('only metadata-document clients unused for the period and referenced by nothing live are deleted', async (t) => {
  const { db } = await migratedDatabase();
  const stale = await documentClient(db, 40, 35);
  const neverUsed = await documentClient(db, 40);
  const withDeadGrants = await documentClient(db, 40);
  await request(db, withDeadGrants, past());
  await code(db, withDeadGrants, future(), new Date());
  await code(db, withDeadGrants, past(), null);
  await refreshToken(db, withDeadGrants, future(), new Date());
  await refreshToken(db, withDeadGrants, past(), null);

  const recentlyFetched = await documentClient(db, 5);
  const recentlyUsed = await documentClient(db, 40, 2);
  const pendingRequest = await documentClient(db, 40);
  await request(db, pendingRequest, future());
  const liveCode = await documentClient(db, 40);
  await code(db, liveCode, future(), null);
  const liveToken = await documentClient(db, 40);
  await refreshToken(db, liveToken, future(), null);
  const consented = await documentClient(db, 40);
  await db.insertInto('consents').values({ sub: 'alice', client_id: consented, scopes: [], resources: [] }).execute();
  const operators = unique('admin');
  await createClient(db, {
    ...METADATA,
    client_id: operators,
    secret_hash: null,
    source: 'admin',
    secret_rotated_at: null,
    last_used_at: null,
    disabled_at: null,
    updated_at: new Date(Date.now() - 400 * DAY * 1000),
  });

  const deleted = await deleteUnusedClientIdDocumentClients(db, 30 * DAY);
  const mine = [stale, neverUsed, withDeadGrants];
  t.same(deleted.filter((id) => mine.includes(id)).sort(), [...mine].sort(), 'the unused ones');
  for (const id of [recentlyFetched, recentlyUsed, pendingRequest, liveCode, liveToken, consented, operators]) {
    t.notOk(deleted.includes(id), `${id} kept`);
    t.ok(await findClientById(db, id), `${id} still stored`);
  }
  const leftovers = await db
    .selectFrom('refresh_tokens')
    .select('token_hash')
    .where('client_id', '=', withDeadGrants)
    .execute();
  t.same(leftovers, [], 'dead grants went with it by cascade');
});

t.test('the service forgets pruned clients at once', async (t) => {
  const { db } = await migratedDatabase();
  const service = createClients(db, clientConfig(CIMD));
  const clientId = await documentClient(db, 40);
  t.ok(await service.registry.get(clientId), 'cached');
  t.ok((await service.admin.pruneClientIdDocumentClients(30 * DAY)).includes(clientId));
  t.equal(await service.registry.get(clientId), undefined);
});

t.test('gatehouse clients prune-metadata-documents [--unused-days N]', async (t) => {
  const handle = await migratedDatabase();
  const config = clientConfig(CIMD);
  const run = (args: string[], options: Record<string, unknown> = {}, json = false) =>
    clientsCommand(args, { config, handle, json, options: { json, ...options } });
  const runText = async (args: string[], options: Record<string, unknown> = {}): Promise<string> => {
    const out = await run(args, options);
    if (typeof out !== 'string') throw new Error(`expected text, got ${JSON.stringify(out)}`);
    return out;
  };
  const old = await documentClient(handle.db, 40);
  const week = await documentClient(handle.db, 8);
  const text = await runText(['prune-metadata-documents']);
  t.match(text, new RegExp(`deleted ${old.replace(/[.?]/g, '\\$&')}`));
  t.match(text, /metadata-document client\(s\) unused for 30 days/);
  t.ok(await findClientById(handle.db, week), 'unused for only 8 days: kept by default');
  const out = (await run(['prune-metadata-documents'], { 'unused-days': '7' }, true)) as { deleted: string[] };
  t.ok(out.deleted.includes(week), '--unused-days 7 deletes it');
  t.match(await runText(['prune-metadata-documents'], { 'unused-days': '7' }), /No metadata-document client to delete/);
  await t.rejects(run(['prune-metadata-documents'], { 'unused-days': '0' }), ClientsUsageError);
  await t.rejects(run(['prune-metadata-documents'], { 'unused-days': 'soon' }), ClientsUsageError);
  await t.rejects(run(['list'], { 'unused-days': '3' }), ClientsUsageError);
});
