import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { migrateDown, migrateUp } from '../../src/db/migrate.js';
import { testDatabase } from '../helper.js';

const STRONG = randomBytes(32).toString('base64');
const MIGRATION = '2026-11-22T0030_metadata_document_clients';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

t.test('CIMD settings: off by default, with the draft-recommended limits', async (t) => {
  const { config } = loadConfig({});
  t.same(config.clientIdMetadataDocuments, {
    enabled: false,
    fetchTimeout: 5000,
    maxBytes: 5120,
    cacheMin: 60,
    cacheMax: 86400,
    cacheDefault: 300,
    allowPrivateAddresses: false,
    caFile: '',
  });
});

t.test('production refuses CIMD_ALLOW_PRIVATE_ADDRESSES (draft section 8.6)', async (t) => {
  const prod = {
    NODE_ENV: 'production',
    ISSUER: 'https://auth.example.com',
    KEY_ENCRYPTION_SECRET: STRONG,
    CIMD_ENABLED: 'true',
  };
  t.same(problemsOf(prod), []);
  t.match(problemsOf({ ...prod, CIMD_ALLOW_PRIVATE_ADDRESSES: 'true' }), [
    /^CIMD_ALLOW_PRIVATE_ADDRESSES: must be false in production/,
  ]);
  t.same(problemsOf({ NODE_ENV: 'development', CIMD_ALLOW_PRIVATE_ADDRESSES: 'true' }), [], 'allowed for development');
});

t.test('cache bounds must be consistent', async (t) => {
  t.match(problemsOf({ CIMD_CACHE_MIN_SECONDS: '600', CIMD_CACHE_MAX_SECONDS: '60' }), [
    /^CIMD_CACHE_MIN_SECONDS: must not exceed/,
    /^CIMD_CACHE_DEFAULT_SECONDS: must lie between/,
  ]);
  t.match(problemsOf({ CIMD_CACHE_DEFAULT_SECONDS: '30' }), [/^CIMD_CACHE_DEFAULT_SECONDS: must lie between/]);
  t.match(problemsOf({ CIMD_FETCH_TIMEOUT_MS: '0' }), [/^CIMD_FETCH_TIMEOUT_MS: must be a positive integer/]);
});

t.test('the migration widens clients.source to metadata_document, and down forgets such clients', async (t) => {
  const { root } = await testDatabase();
  const schema = `cimd_${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(root);
  });
  await migrateUp(root, schema);
  const db = root.withSchema(schema);
  const row = {
    client_id: 'https://app.example.com/client.json',
    name: 'x',
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
    application_type: 'web',
    source: 'metadata_document',
  };
  await db.insertInto('clients').values(row).execute();
  await t.rejects(
    db
      .insertInto('clients')
      .values({ ...row, client_id: 'other', source: 'elsewhere' })
      .execute(),
    /clients_source_check/,
  );
  // Newer migrations (if any) go first.
  for (let i = 0; i < 20 && !(await migrateDown(root, schema)).includes(MIGRATION); i++);
  t.equal((await db.selectFrom('clients').selectAll().execute()).length, 0, 'metadata-document clients are gone');
  await t.rejects(db.insertInto('clients').values(row).execute(), /clients_source_check/, 'the old check is back');
  t.ok((await migrateUp(root, schema)).includes(MIGRATION), 'and up again');
});
