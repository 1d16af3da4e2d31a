import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// The browser flow's state lives here so it survives a hop to another replica mid-flow.
export async function up(db: Kysely<any>): Promise<void> {
  // Pending /authorize requests, validated, waiting for the host's sign-in answer and consent.
  await db.schema
    .createTable('authorization_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    // OAuth 2.1 §4.1.3: the token request must repeat redirect_uri only when the authorization request sent it.
    .addColumn('redirect_uri_given', 'boolean', (c) => c.notNull())
    .addColumn('state', 'text')
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('resources', sql`text[]`, (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('prompt', 'text')
    .addColumn('max_age', 'integer')
    .addColumn('login_hint', 'text')
    .addColumn('ui_locales', 'text')
    .addColumn('binding_hash', 'text', (c) => c.notNull())
    .addColumn('session_hash', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('answered_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('authorization_requests_expires_at').on('authorization_requests').column('expires_at').execute();

  // Gatehouse browser sessions; the cookie holds the id, only its hash is stored.
  await db.schema
    .createTable('sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('auth_time', 'timestamptz', (c) => c.notNull())
    .addColumn('amr', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('acr', 'text')
    .addColumn('claims', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('sessions_sub').on('sessions').column('sub').execute();

  // Remembered consent per (user, client).
  await db.schema
    .createTable('consents')
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('resources', sql`text[]`, (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('consents_pk', ['sub', 'client_id'])
    .execute();

  // Authorization codes: single use (consumed_at set atomically), hash only.
  await db.schema
    .createTable('authorization_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('redirect_uri_given', 'boolean', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('resources', sql`text[]`, (c) => c.notNull())
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('auth_time', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('consumed_at', 'timestamptz')
    // The refresh-token chain the redemption started, revoked if the code is replayed.
    .addColumn('family_id', 'text')
    .execute();
  await db.schema.createIndex('authorization_codes_expires_at').on('authorization_codes').column('expires_at').execute();

  // Refresh tokens: one chain (family) per code, rotated on every use.
  await db.schema
    .createTable('refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('family_id', 'text', (c) => c.notNull())
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('resources', sql`text[]`, (c) => c.notNull())
    .addColumn('auth_time', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Absolute per chain: every generation carries the chain's original expiry.
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('rotated_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addUniqueConstraint('refresh_tokens_family_generation', ['family_id', 'generation'])
    .execute();
  await db.schema.createIndex('refresh_tokens_sub_client').on('refresh_tokens').columns(['sub', 'client_id']).execute();
  await db.schema.createIndex('refresh_tokens_expires_at').on('refresh_tokens').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('refresh_tokens').execute();
  await db.schema.dropTable('authorization_codes').execute();
  await db.schema.dropTable('consents').execute();
  await db.schema.dropTable('sessions').execute();
  await db.schema.dropTable('authorization_requests').execute();
}
