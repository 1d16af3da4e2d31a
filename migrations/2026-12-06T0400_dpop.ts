import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// DPoP (RFC 9449). `dpop_proofs` remembers the proofs the token endpoint accepted (a SHA-256 of key
// thumbprint and jti) until their iat leaves the accepted window, so a replayed proof is refused by every
// replica (§11.1); the janitor deletes expired rows. `dpop_jkt` binds a pending authorization request and
// its code to the key named by /authorize's dpop_jkt (§10), and a public client's refresh-token chain to
// the key of the proof it was issued with (§5). `dpop_bound_access_tokens` is the client metadata of §5.2.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('dpop_proofs')
    .addColumn('proof_hash', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dpop_proofs_expires_at').on('dpop_proofs').column('expires_at').execute();
  await db.schema.alterTable('authorization_requests').addColumn('dpop_jkt', 'text').execute();
  await db.schema.alterTable('authorization_codes').addColumn('dpop_jkt', 'text').execute();
  await db.schema.alterTable('refresh_tokens').addColumn('dpop_jkt', 'text').execute();
  await db.schema
    .alterTable('clients')
    .addColumn('dpop_bound_access_tokens', 'boolean', (c) => c.notNull().defaultTo(sql`false`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('clients').dropColumn('dpop_bound_access_tokens').execute();
  await db.schema.alterTable('refresh_tokens').dropColumn('dpop_jkt').execute();
  await db.schema.alterTable('authorization_codes').dropColumn('dpop_jkt').execute();
  await db.schema.alterTable('authorization_requests').dropColumn('dpop_jkt').execute();
  await db.schema.dropTable('dpop_proofs').execute();
}
