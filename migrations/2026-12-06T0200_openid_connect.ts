import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// OpenID Connect Core 1.0 (docs/openid-connect.md). What an ID token needs travels with the request, the
// code and the refresh-token chain:
// - authorization_requests: the nonce (§3.1.2.1, echoed exactly), acr_values for the host, and the sub of
//   a verified id_token_hint; `prompt` keeps its text column and now holds a space-separated set.
// - authorization_codes: nonce, and the session's acr and amr at the time the code was issued.
// - refresh_tokens: acr, amr and the session's sid, so an ID token issued on refresh (§12.2) carries the
//   original sign-in's values.
// - clients: the OIDC Registration 1.0 §2 metadata Gatehouse honours.
// - granted_claims: the host's claims for a user, kept per (user, client) with the grant and replaced at
//   every sign-in that issues a code with `openid`, so /userinfo answers for a refresh chain after the
//   browser session is gone.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('authorization_requests')
    .addColumn('nonce', 'text')
    .addColumn('acr_values', 'text')
    .addColumn('id_token_hint_sub', 'text')
    .execute();
  await db.schema
    .alterTable('authorization_codes')
    .addColumn('nonce', 'text')
    .addColumn('acr', 'text')
    .addColumn('amr', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .execute();
  await db.schema
    .alterTable('refresh_tokens')
    .addColumn('acr', 'text')
    .addColumn('amr', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('sid', 'text')
    .execute();
  await db.schema
    .alterTable('clients')
    .addColumn('id_token_signed_response_alg', 'text')
    .addColumn('default_max_age', 'integer')
    .addColumn('require_auth_time', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema
    .createTable('granted_claims')
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('claims', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('granted_claims_pkey', ['sub', 'client_id'])
    // Gone with the client, like its consents and tokens.
    .addForeignKeyConstraint('granted_claims_client_fk', ['client_id'], 'clients', ['client_id'], (fk) =>
      fk.onDelete('cascade'),
    )
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('granted_claims').execute();
  await db.schema
    .alterTable('clients')
    .dropColumn('id_token_signed_response_alg')
    .dropColumn('default_max_age')
    .dropColumn('require_auth_time')
    .execute();
  await db.schema.alterTable('refresh_tokens').dropColumn('acr').dropColumn('amr').dropColumn('sid').execute();
  await db.schema.alterTable('authorization_codes').dropColumn('nonce').dropColumn('acr').dropColumn('amr').execute();
  await db.schema
    .alterTable('authorization_requests')
    .dropColumn('nonce')
    .dropColumn('acr_values')
    .dropColumn('id_token_hint_sub')
    .execute();
}
