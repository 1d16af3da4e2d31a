import { type Kysely, sql } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// OpenID Connect Back-Channel Logout 1.0 and the host's signed sign-out message:
// - clients: `backchannel_logout_uri` and `backchannel_logout_session_required` (§2.2);
// - session_clients: which clients a Gatehouse session issued codes to (§2.3 "remembering logged-in RPs"),
//   deleted with the session or the client;
// - logout_deliveries: the outbox of logout tokens still to POST (§2.5), one row per (session, client),
//   retried with backoff by one replica at a time (FOR UPDATE SKIP LOCKED); the token itself is signed at
//   each attempt and never stored;
// - host_sign_out_jtis: the `jti` of every host sign-out message accepted, until it expires (single use).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('clients')
    .addColumn('backchannel_logout_uri', 'text')
    .addColumn('backchannel_logout_session_required', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();

  await db.schema
    .createTable('session_clients')
    .addColumn('sid', 'text', (c) => c.notNull().references('sessions.sid').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('session_clients_pkey', ['sid', 'client_id'])
    .execute();
  await db.schema.createIndex('session_clients_client_id').on('session_clients').column('client_id').execute();

  await db.schema
    .createTable('logout_deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey().defaultTo(sql`replace(gen_random_uuid()::text, '-', '')`))
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('sid', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('logout_deliveries_due').on('logout_deliveries').column('next_attempt_at').execute();
  await db.schema.createIndex('logout_deliveries_client_id').on('logout_deliveries').column('client_id').execute();

  await db.schema
    .createTable('host_sign_out_jtis')
    .addColumn('jti', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('host_sign_out_jtis_expires_at').on('host_sign_out_jtis').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('host_sign_out_jtis').execute();
  await db.schema.dropTable('logout_deliveries').execute();
  await db.schema.dropTable('session_clients').execute();
  await db.schema
    .alterTable('clients')
    .dropColumn('backchannel_logout_session_required')
    .dropColumn('backchannel_logout_uri')
    .execute();
}
