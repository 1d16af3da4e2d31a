import type { Kysely } from 'kysely';
import type { Database, Db } from '../db/database.js';
import { precompiled } from '../db/precompiled.js';

interface RecordParams extends Record<string, unknown> {
  proofHash: string;
  expiresAt: Date;
}

const record = precompiled<RecordParams, { proof_hash: string }>((db, p) =>
  (db as Kysely<Database>)
    .insertInto('dpop_proofs')
    .values({ proof_hash: p.proofHash, expires_at: p.expiresAt })
    .onConflict((oc) => oc.column('proof_hash').doNothing())
    .returning(['proof_hash']),
);

/**
 * Records an accepted DPoP proof (RFC 9449 §11.1) in one prepared statement; false when it was already
 * recorded, by this replica or another: the unique key decides, so two replicas racing on one proof
 * cannot both accept it. An expired row left behind (the janitor has not yet run) still counts, which
 * is harmless: such a proof's iat is outside the window anyway.
 */
export async function recordDpopProof(db: Db, proofHash: string, expiresAt: Date): Promise<boolean> {
  const rows = await record(db, { proofHash, expiresAt });
  return rows.length === 1;
}
