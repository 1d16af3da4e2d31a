import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// A rotation's answer can be lost (a dropped connection, a client timeout, a database that froze and
// committed later). So that the client's retry with the token it still holds gets the same successor
// instead of revoking its chain (the grace window, docs/refresh-tokens.md), a rotated generation keeps
// its successor sealed under a key derived from its own token value, which only the client holds: the
// database alone cannot open it. A nullable column with no default: a catalogue change, no table rewrite.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').addColumn('successor_sealed', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').dropColumn('successor_sealed').execute();
}
