import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Pushed authorization requests (RFC 9126) and private_key_jwt client authentication (RFC 7523 §2.2,
// OpenID Connect Core §9): the client metadata they need, the pushed requests waiting for /authorize,
// and the client assertion ids already seen (replay, across replicas).
// `clients_token_endpoint_auth_method_check` is the name Postgres (and PGlite) gave the column check of
// the first migration; `clients_secret_matches_auth_method` is that migration's named check.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('clients')
    // RFC 7591 §2: the client's public keys by value or by reference (never both).
    .addColumn('jwks', 'jsonb')
    .addColumn('jwks_uri', 'text')
    .addColumn('token_endpoint_auth_signing_alg', 'text')
    // RFC 9126 §6.
    .addColumn('require_pushed_authorization_requests', 'boolean', (c) => c.notNull().defaultTo(false))
    // A named set of stricter rules the client is held to ('fapi2'), or null.
    .addColumn('security_profile', 'text', (c) => c.check(sql`security_profile in ('fapi2')`))
    .execute();
  await db.schema.alterTable('clients').dropConstraint('clients_token_endpoint_auth_method_check').execute();
  await db.schema
    .alterTable('clients')
    .addCheckConstraint(
      'clients_token_endpoint_auth_method_check',
      sql`token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')`,
    )
    .execute();
  // Only the two secret methods hold a secret: a private_key_jwt client proves itself with its key.
  await db.schema.alterTable('clients').dropConstraint('clients_secret_matches_auth_method').execute();
  await db.schema
    .alterTable('clients')
    .addCheckConstraint(
      'clients_secret_matches_auth_method',
      sql`(token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post')) = (secret_hash is not null)`,
    )
    .execute();

  // RFC 9126: a pushed request, stored under the hash of its request_uri, used once (consumed_at).
  await db.schema
    .createTable('pushed_authorization_requests')
    .addColumn('request_uri_hash', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    // The authorization request parameters as pushed (the form body minus client authentication).
    .addColumn('params', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('consumed_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('pushed_authorization_requests_expires_at')
    .on('pushed_authorization_requests')
    .column('expires_at')
    .execute();

  // RFC 7523 §3: a client assertion's jti is used once; kept until the assertion expires.
  await db.schema
    .createTable('client_assertion_jtis')
    .addColumn('jti_hash', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('client_assertion_jtis_expires_at')
    .on('client_assertion_jtis')
    .column('expires_at')
    .execute();
}

// Going down turns private_key_jwt clients off (they have no secret the narrower checks could accept):
// they are deleted with their grants, as the metadata-document migration's down does for its clients.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('client_assertion_jtis').execute();
  await db.schema.dropTable('pushed_authorization_requests').execute();
  await db.deleteFrom('clients').where('token_endpoint_auth_method', '=', 'private_key_jwt').execute();
  await db.schema.alterTable('clients').dropConstraint('clients_secret_matches_auth_method').execute();
  await db.schema
    .alterTable('clients')
    .addCheckConstraint('clients_secret_matches_auth_method', sql`(token_endpoint_auth_method = 'none') = (secret_hash is null)`)
    .execute();
  await db.schema.alterTable('clients').dropConstraint('clients_token_endpoint_auth_method_check').execute();
  await db.schema
    .alterTable('clients')
    .addCheckConstraint(
      'clients_token_endpoint_auth_method_check',
      sql`token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post', 'none')`,
    )
    .execute();
  await db.schema
    .alterTable('clients')
    .dropColumn('jwks')
    .dropColumn('jwks_uri')
    .dropColumn('token_endpoint_auth_signing_alg')
    .dropColumn('require_pushed_authorization_requests')
    .dropColumn('security_profile')
    .execute();
}
