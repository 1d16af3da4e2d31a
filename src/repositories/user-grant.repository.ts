import { type Kysely, sql } from 'kysely';
import type { Database, Db } from '../db/database.js';
import { batchInput, batched } from '../db/batch.js';
import { precompiled } from '../db/precompiled.js';
import { chainHasNoRevokedMember } from './refresh-token.repository.js';
import { revokeSessionsFor } from './session.repository.js';

/** A client's standing access for one user: its remembered consent and its live refresh-token chains. */
export interface ClientGrant {
  client_id: string;
  /** What the user consented to (null when the client skips consent or the consent was not kept). */
  consent: { scopes: string[]; resources: string[]; created_at: Date; updated_at: Date } | null;
  /** Live refresh-token chains: each can still mint access tokens until it expires. */
  refresh_chains: Array<{ scopes: string[]; resources: string[]; auth_time: Date; created_at: Date; expires_at: Date }>;
}

/** Every client a user has granted something to, with what. */
export async function listUserGrants(db: Db, sub: string, now = new Date()): Promise<ClientGrant[]> {
  const consents = await db.selectFrom('consents').selectAll().where('sub', '=', sub).orderBy('client_id').execute();
  // The chain's live generation: not rotated away, not revoked, not expired.
  const chains = await db
    .selectFrom('refresh_tokens')
    .select(['client_id', 'scopes', 'resources', 'auth_time', 'created_at', 'expires_at'])
    .where('sub', '=', sub)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    // A chain with a revoked member is dead even if its newest generation escaped the revocation.
    .where(chainHasNoRevokedMember)
    .orderBy('client_id')
    .orderBy('created_at')
    .execute();
  const byClient = new Map<string, ClientGrant>();
  const entry = (clientId: string): ClientGrant => {
    let grant = byClient.get(clientId);
    if (!grant) byClient.set(clientId, (grant = { client_id: clientId, consent: null, refresh_chains: [] }));
    return grant;
  };
  for (const c of consents)
    entry(c.client_id).consent = {
      scopes: c.scopes,
      resources: c.resources,
      created_at: c.created_at,
      updated_at: c.updated_at,
    };
  for (const { client_id, ...chain } of chains) entry(client_id).refresh_chains.push(chain);
  return [...byClient.values()].sort((a, b) => (a.client_id < b.client_id ? -1 : a.client_id > b.client_id ? 1 : 0));
}

/** What a revocation ended. */
export interface RevokedGrants {
  /** Refresh tokens revoked (every generation of every chain counts once). */
  refresh_tokens: number;
  /** Remembered consents forgotten: the next request asks again. */
  consents: number;
  /** Authorization codes issued but not yet redeemed, now unusable. */
  authorization_codes: number;
  /** Gatehouse browser sessions ended (only when revoking for every client). */
  sessions: number;
}

/**
 * Ends what a user granted: codes not yet redeemed, every refresh-token chain (or those of one client),
 * the remembered consent, and, unless limited to one client, the user's Gatehouse sessions; in one
 * transaction. Access tokens already issued are self-contained JWTs and stay valid until they expire
 * (ACCESS_TOKEN_TTL_SECONDS). The host should stop signing the user in first, or a new grant can follow.
 *
 * Races with the token endpoint: the codes go first, so a redemption in flight either finishes before
 * (its code row is locked until then) or finds its code used. A refresh or redemption that committed a
 * new generation while the revoking UPDATE ran is invisible to that statement's snapshot (READ
 * COMMITTED), so the UPDATE is repeated until it finds nothing: each pass sees what committed before it.
 */
export async function revokeUserGrants(
  db: Db,
  sub: string,
  options: { clientId?: string; now?: Date } = {},
): Promise<RevokedGrants> {
  const now = options.now ?? new Date();
  const clientId = options.clientId;
  const run = async (tx: Db): Promise<RevokedGrants> => {
    let codes = tx
      .updateTable('authorization_codes')
      .set({ consumed_at: now })
      .where('sub', '=', sub)
      .where('consumed_at', 'is', null);
    if (clientId !== undefined) codes = codes.where('client_id', '=', clientId);
    const voided = Number((await codes.executeTakeFirst()).numUpdatedRows);

    let refreshTokens = 0;
    for (let pass = 0; ; pass++) {
      if (pass === 10) throw new Error("the user's refresh-token chains kept growing while being revoked");
      let refresh = tx
        .updateTable('refresh_tokens')
        .set({ revoked_at: now })
        .where('sub', '=', sub)
        .where('revoked_at', 'is', null);
      if (clientId !== undefined) refresh = refresh.where('client_id', '=', clientId);
      const revoked = Number((await refresh.executeTakeFirst()).numUpdatedRows);
      refreshTokens += revoked;
      if (revoked === 0) break;
    }

    let consents = tx.deleteFrom('consents').where('sub', '=', sub);
    if (clientId !== undefined) consents = consents.where('client_id', '=', clientId);
    const forgotten = Number((await consents.executeTakeFirst()).numDeletedRows);
    // The host's claims kept for /userinfo go with the grant (OpenID Connect; docs/openid-connect.md).
    let claims = tx.deleteFrom('granted_claims').where('sub', '=', sub);
    if (clientId !== undefined) claims = claims.where('client_id', '=', clientId);
    await claims.execute();

    // Remembered so /introspect calls the access tokens issued before now inactive (they outlive this).
    await tx
      .insertInto('grant_revocations')
      .values({ sub, client_id: clientId ?? null, revoked_at: now })
      .execute();

    const sessions = clientId === undefined ? await revokeSessionsFor(tx, sub, now) : 0;
    return { refresh_tokens: refreshTokens, consents: forgotten, authorization_codes: voided, sessions };
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

/**
 * Whether a user's grant to a client was revoked at or after `issuedAt` (an access token's `iat`, whole
 * seconds: a token from the same second as the revocation counts as revoked, erring on the safe side).
 * Precompiled and prepared: every introspection of a user's access token asks this, and the questions
 * asked at the same time share one statement (src/db/batch.ts).
 */
export async function grantRevokedSince(db: Db, sub: string, clientId: string, issuedAt: Date): Promise<boolean> {
  return (await revocationCheck(db, { sub, clientId, issuedAt })) === true;
}

interface RevocationQuestion extends Record<string, unknown> {
  sub: string;
  clientId: string;
  issuedAt: Date;
}

const revokedSince = precompiled<RevocationQuestion, { revoked_at: Date }>((db, p) =>
  (db as Kysely<Database>)
    .selectFrom('grant_revocations')
    .select('revoked_at')
    .where('sub', '=', p.sub)
    .where((eb) => eb.or([eb('client_id', 'is', null), eb('client_id', '=', p.clientId)]))
    .where('revoked_at', '>=', p.issuedAt)
    .limit(sql.lit(1)),
);

/** The same question for several tokens: the ordinals of those whose grant was revoked since. */
const revokedSinceMany = precompiled<{ items: string }, { ord: number }>((db, p) =>
  (db as Kysely<Database>)
    .with('input', (qb) =>
      qb
        .selectFrom(
          batchInput<{ ord: number; sub: string; client_id: string; issued_at: Date }>(
            p.items,
            'ord int, sub text, client_id text, issued_at timestamptz',
          ),
        )
        .selectAll(),
    )
    .selectFrom('input')
    .select('input.ord')
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('grant_revocations')
          .select(sql.lit(1).as('one'))
          .whereRef('grant_revocations.sub', '=', 'input.sub')
          .where(sql<boolean>`(grant_revocations.client_id is null or grant_revocations.client_id = input.client_id)`)
          .whereRef('grant_revocations.revoked_at', '>=', 'input.issued_at'),
      ),
    ),
);

const revocationCheck = batched<RevocationQuestion, boolean>({
  name: 'grant_revocation_check',
  max: 64,
  one: async (db, q) => (await revokedSince(db, q)).length > 0,
  many: async (db, items) => {
    const input = items.map((q, ord) => ({ ord, sub: q.sub, client_id: q.clientId, issued_at: q.issuedAt }));
    const revoked = new Set((await revokedSinceMany(db, { items: JSON.stringify(input) })).map((row) => row.ord));
    return items.map((_, ord) => revoked.has(ord));
  },
});
