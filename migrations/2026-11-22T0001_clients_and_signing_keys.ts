import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('secret_hash', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('redirect_uris', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('post_logout_redirect_uris', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('grant_types', sql`text[]`, (c) => c.notNull())
    .addColumn('response_types', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('token_endpoint_auth_method', 'text', (c) =>
      c.notNull().check(sql`token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post', 'none')`),
    )
    .addColumn('scopes', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('default_scopes', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('resources', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('application_type', 'text', (c) => c.notNull().defaultTo('web').check(sql`application_type in ('web', 'native')`))
    .addColumn('client_uri', 'text')
    .addColumn('logo_uri', 'text')
    .addColumn('policy_uri', 'text')
    .addColumn('tos_uri', 'text')
    .addColumn('contacts', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('skip_consent', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('admin', 'file', 'registration')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('secret_rotated_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('disabled_at', 'timestamptz')
    // A confidential method needs a secret; a public client has none.
    .addCheckConstraint(
      'clients_secret_matches_auth_method',
      sql`(token_endpoint_auth_method = 'none') = (secret_hash is null)`,
    )
    .execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('private_key_enc', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('next', 'active', 'retired')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('activate_at', 'timestamptz')
    .addColumn('activated_at', 'timestamptz')
    .addColumn('retired_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz')
    .execute();

  // At most one key signs at a time.
  await db.schema
    .createIndex('signing_keys_one_active')
    .on('signing_keys')
    .column('state')
    .unique()
    .where('state', '=', 'active')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signing_keys').execute();
  await db.schema.dropTable('clients').execute();
}
