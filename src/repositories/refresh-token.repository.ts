import { type ExpressionBuilder, type Kysely, sql } from 'kysely';
import type { Database, Db, SchemalessDb } from '../db/database.js';
import { batchInput, batched } from '../db/batch.js';
import { precompiled } from '../db/precompiled.js';
import type { RefreshTokenRow } from '../db/tables/refresh-token.table.js';

/**
 * The condition, on a `refresh_tokens` row, that no generation of its chain is revoked: a chain is dead
 * as soon as one member is (a revocation racing a rotation may have missed the newest generation).
 * Answered by the partial index on revoked members.
 */
export function chainHasNoRevokedMember(eb: ExpressionBuilder<Database, 'refresh_tokens'>) {
  return eb.not(
    eb.exists(
      eb
        .selectFrom('refresh_tokens as member')
        .select(sql.lit(1).as('one'))
        .whereRef('member.family_id', '=', 'refresh_tokens.family_id')
        .where('member.revoked_at', 'is not', null),
    ),
  );
}

/** The columns a refresh-token generation is inserted with: a rotation's successor, or a chain's first token. */
const GENERATION_COLUMNS = [
  'token_hash',
  'family_id',
  'generation',
  'client_id',
  'sub',
  'scopes',
  'resources',
  'auth_time',
  'expires_at',
  'dpop_jkt',
  'acr',
  'amr',
  'sid',
] as const;

/** What a code redemption checks inside its one atomic statement. */
export interface CodeRedemption {
  codeHash: string;
  clientId: string;
  codeChallenge: string;
  /** The token request's redirect_uri, or null when it sent none. */
  redirectUri: string | null;
  /** Resources the token request names (RFC 8707 §2.2); they must all have been granted. */
  resources: readonly string[];
  /** The thumbprint of the request's DPoP proof key, or null: a code bound by dpop_jkt needs it (RFC 9449 §10). */
  jkt: string | null;
  /** The time of the request (the caller's clock). */
  now: Date;
}

/** What a successful redemption yields for the tokens. */
export interface RedeemedCode {
  sub: string;
  scopes: string[];
  resources: string[];
  auth_time: Date;
  /** The refresh-token chain started, when one was. */
  family_id: string | null;
  /** OIDC: for the ID token. */
  nonce: string | null;
  acr: string | null;
  amr: string[];
  sid: string | null;
}

/** The columns a redemption returns (named, not `*`: see src/db/precompiled.ts). */
const REDEEMED = ['sub', 'scopes', 'resources', 'auth_time', 'family_id', 'nonce', 'acr', 'amr', 'sid'] as const;

interface RedeemParams extends Record<string, unknown> {
  codeHash: string;
  clientId: string;
  codeChallenge: string;
  redirectUri: string | null;
  resources: string[];
  jkt: string | null;
  now: Date;
  familyId: string | null;
  tokenHash: string;
  expiresAt: Date;
  chainJkt: string | null;
}

/** RFC 9449 §5, §10: an unbound row, or one bound to the presented key (null, no proof, matches no bound row). */
const boundToKey = (jkt: unknown) => sql<boolean>`(dpop_jkt is null or dpop_jkt = ${jkt}::text)`;

/** The conditional UPDATE that consumes a code; `redirectGiven` picks the redirect_uri condition's shape. */
function consumeCode(db: SchemalessDb, p: RedeemParams, redirectGiven: boolean) {
  return (
    (db as Kysely<Database>)
      .updateTable('authorization_codes')
      .set({ consumed_at: p.now, family_id: p.familyId })
      .where('code_hash', '=', p.codeHash)
      .where('client_id', '=', p.clientId)
      .where('code_challenge', '=', p.codeChallenge)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', p.now)
      .where((eb) =>
        redirectGiven
          ? eb('redirect_uri', '=', p.redirectUri as string)
          : eb('redirect_uri_given', '=', sql.lit(false)),
      )
      // A refused resource must not burn the code: it is part of the condition, not checked afterwards.
      .where(sql<boolean>`resources @> ${sql.val(p.resources)}::text[]`)
      // A proof by another key (or none) must not burn a code bound by dpop_jkt either.
      .where(boundToKey(p.jkt))
  );
}

const redeemOnly = (redirectGiven: boolean) =>
  precompiled<RedeemParams, RedeemedCode>((db, p) => consumeCode(db, p, redirectGiven).returning([...REDEEMED]));

const redeemAndStartChain = (redirectGiven: boolean) =>
  precompiled<RedeemParams, RedeemedCode>((db, p) =>
    (db as Kysely<Database>)
      .with('code', () =>
        consumeCode(db, p, redirectGiven).returning([
          'family_id',
          'client_id',
          'sub',
          'scopes',
          'resources',
          'auth_time',
          'nonce',
          'acr',
          'amr',
          'sid',
        ]),
      )
      .insertInto('refresh_tokens')
      .columns(GENERATION_COLUMNS)
      .expression((eb) =>
        eb
          .selectFrom('code')
          .select([
            sql<string>`${p.tokenHash}::text`.as('token_hash'),
            'code.family_id',
            sql.lit(0).as('generation'),
            'code.client_id',
            'code.sub',
            'code.scopes',
            'code.resources',
            'code.auth_time',
            sql<Date>`${p.expiresAt}::timestamptz`.as('expires_at'),
            sql<string | null>`${p.chainJkt}::text`.as('dpop_jkt'),
            'code.acr',
            'code.amr',
            'code.sid',
          ]),
      )
      // The code's nonce is not carried onto the chain (OIDC Core §12.2): it comes back from the CTE.
      .returning((eb) => [
        ...(['sub', 'scopes', 'resources', 'auth_time', 'family_id', 'acr', 'amr', 'sid'] as const),
        eb.selectFrom('code').select('code.nonce').as('nonce'),
      ]),
  );

const REDEEM = {
  only: { given: redeemOnly(true), absent: redeemOnly(false) },
  chain: { given: redeemAndStartChain(true), absent: redeemAndStartChain(false) },
};

/** A redemption's refresh-token chain, when the client gets one. */
export interface NewChain {
  familyId: string;
  tokenHash: string;
  expiresAt: Date;
  jkt: string | null;
}

interface Redemption {
  code: CodeRedemption;
  refresh: NewChain | null;
}

const redeemOne = ({ code: r, refresh }: Redemption) => ({
  variant: (refresh ? REDEEM.chain : REDEEM.only)[r.redirectUri === null ? 'absent' : 'given'],
  params: {
    codeHash: r.codeHash,
    clientId: r.clientId,
    codeChallenge: r.codeChallenge,
    redirectUri: r.redirectUri,
    resources: [...r.resources],
    jkt: r.jkt,
    now: r.now,
    familyId: refresh ? refresh.familyId : null,
    tokenHash: refresh ? refresh.tokenHash : '',
    expiresAt: refresh ? refresh.expiresAt : new Date(0),
    chainJkt: refresh ? refresh.jkt : null,
  },
});

/** The columns of a redemption batch's input rows (batchInput). */
const REDEMPTION_INPUT =
  'code_hash text, client_id text, code_challenge text, redirect_uri text, resources text[], jkt text, ' +
  'now timestamptz, family_id text, token_hash text, expires_at timestamptz, chain_jkt text';

interface RedemptionInput {
  code_hash: string;
  client_id: string;
  code_challenge: string;
  redirect_uri: string | null;
  resources: string[];
  jkt: string | null;
  now: Date;
  family_id: string | null;
  token_hash: string | null;
  expires_at: Date | null;
  chain_jkt: string | null;
}

/**
 * The same redemption for several codes in one statement (src/db/batch.ts): every condition of
 * `consumeCode`, evaluated per row against that item's own values (a redirect_uri when the request sent
 * one, else the code must have been issued without one); the items that start a chain (a family id) insert
 * its first refresh token from the code they consumed. Each consumed code comes back under its hash.
 * The batch never holds one code twice.
 */
const redeemMany = precompiled<{ items: string }, RedeemedCode & { code_hash: string }>((db, p) =>
  (db as Kysely<Database>)
    .with('input', (qb) => qb.selectFrom(batchInput<RedemptionInput>(p.items, REDEMPTION_INPUT)).selectAll())
    .with('code', (qb) =>
      qb
        .updateTable('authorization_codes')
        .from('input')
        .set({ consumed_at: sql<Date>`input.now`, family_id: sql<string | null>`input.family_id` })
        .whereRef('authorization_codes.code_hash', '=', 'input.code_hash')
        .whereRef('authorization_codes.client_id', '=', 'input.client_id')
        .whereRef('authorization_codes.code_challenge', '=', 'input.code_challenge')
        .where('authorization_codes.consumed_at', 'is', null)
        .whereRef('authorization_codes.expires_at', '>', 'input.now')
        .where(
          sql<boolean>`(case when input.redirect_uri is null then authorization_codes.redirect_uri_given = false
                        else authorization_codes.redirect_uri = input.redirect_uri end)`,
        )
        .where(sql<boolean>`authorization_codes.resources @> input.resources`)
        .where(sql<boolean>`(authorization_codes.dpop_jkt is null or authorization_codes.dpop_jkt = input.jkt)`)
        .returning([
          'authorization_codes.code_hash',
          'authorization_codes.family_id',
          'authorization_codes.client_id',
          'authorization_codes.sub',
          'authorization_codes.scopes',
          'authorization_codes.resources',
          'authorization_codes.auth_time',
          'authorization_codes.nonce',
          'authorization_codes.acr',
          'authorization_codes.amr',
          'authorization_codes.sid',
        ])
        .returning(['input.token_hash as chain_token_hash', 'input.expires_at as chain_expires_at', 'input.chain_jkt']),
    )
    .with('chain', (qb) =>
      qb
        .insertInto('refresh_tokens')
        .columns(GENERATION_COLUMNS)
        .expression((eb) =>
          eb
            .selectFrom('code')
            .select([
              'code.chain_token_hash',
              'code.family_id',
              sql.lit(0).as('generation'),
              'code.client_id',
              'code.sub',
              'code.scopes',
              'code.resources',
              'code.auth_time',
              'code.chain_expires_at',
              'code.chain_jkt',
              'code.acr',
              'code.amr',
              'code.sid',
            ])
            .where('code.family_id', 'is not', null),
        ),
    )
    // The code's nonce is not carried onto the chain (OIDC Core §12.2); it is answered from the code.
    .selectFrom('code')
    .select(['code.code_hash', ...REDEEMED.map((column) => `code.${column}` as const)]),
);

const redemptionInput = ({ code: r, refresh }: Redemption): RedemptionInput => ({
  code_hash: r.codeHash,
  client_id: r.clientId,
  code_challenge: r.codeChallenge,
  redirect_uri: r.redirectUri,
  resources: [...r.resources],
  jkt: r.jkt,
  now: r.now,
  family_id: refresh ? refresh.familyId : null,
  token_hash: refresh ? refresh.tokenHash : null,
  expires_at: refresh ? refresh.expiresAt : null,
  chain_jkt: refresh ? refresh.jkt : null,
});

const redemption = batched<Redemption, RedeemedCode>({
  name: 'authorization_code_redemption',
  max: 64,
  key: (r) => r.code.codeHash,
  one: async (db, r) => {
    const { variant, params } = redeemOne(r);
    return (await variant(db, params))[0];
  },
  many: async (db, items) => {
    const rows = await redeemMany(db, { items: JSON.stringify(items.map(redemptionInput)) });
    const byCode = new Map(rows.map(({ code_hash, ...row }) => [code_hash, row]));
    return items.map((r) => byCode.get(r.code.codeHash));
  },
});

/**
 * Redeems a code in one round trip (a precompiled, prepared statement). The conditional UPDATE marks it
 * consumed only when it is unconsumed, unexpired and bound to this client, PKCE challenge and redirect
 * URI (OAuth 2.1 §4.1.3: repeated exactly when the authorization request named one), so a wrong verifier
 * or URI does not burn the code. When `refresh` is given, the same statement starts the refresh-token
 * chain from the row it updated. Redemptions of different codes asked for at the same time share one
 * statement (src/db/batch.ts).
 */
export function redeemCode(db: Db, code: CodeRedemption, refresh: NewChain | null): Promise<RedeemedCode | undefined> {
  return redemption(db, { code, refresh });
}

/** What a rotation must also satisfy: the narrowed scope and resources are within the grant. */
export interface RotationRequest {
  tokenHash: string;
  clientId: string;
  newHash: string;
  scopes: readonly string[];
  resources: readonly string[];
  /** The new token value sealed for the old generation (oauth/tokens/refresh-successor.ts), for a retry. */
  sealedSuccessor: string;
  /** The thumbprint of the request's DPoP proof key, or null: a bound chain needs it (RFC 9449 §5). */
  jkt: string | null;
  /** The time of the request (the caller's clock). */
  now: Date;
}

/** The columns of a refresh-token row, named (not `*`: see src/db/precompiled.ts). */
const REFRESH_TOKEN_COLUMNS = [
  'token_hash',
  'family_id',
  'generation',
  'client_id',
  'sub',
  'scopes',
  'resources',
  'auth_time',
  'created_at',
  'expires_at',
  'rotated_at',
  'revoked_at',
  'successor_sealed',
  'dpop_jkt',
  'acr',
  'amr',
  'sid',
] as const;

/** What a successor copies from the generation it replaces, in GENERATION_COLUMNS order after the generation. */
const CARRIED_OVER = [
  'old.client_id',
  'old.sub',
  'old.scopes',
  'old.resources',
  'old.auth_time',
  'old.expires_at',
  'old.dpop_jkt',
  'old.acr',
  'old.amr',
  'old.sid',
] as const;

interface RotateParams extends Record<string, unknown> {
  tokenHash: string;
  clientId: string;
  newHash: string;
  scopes: string[];
  resources: string[];
  sealedSuccessor: string;
  jkt: string | null;
  now: Date;
}

const rotate = precompiled<RotateParams, RefreshTokenRow>((db, p) =>
  (db as Kysely<Database>)
    .with('old', (qb) =>
      qb
        .updateTable('refresh_tokens')
        // The grace window runs from when the rotation ran on the server, not when it was asked for: a
        // statement held by a frozen database and committed later must not have used up its window.
        .set({
          rotated_at: sql<Date>`greatest(${p.now}::timestamptz, statement_timestamp())`,
          successor_sealed: p.sealedSuccessor,
        })
        .where('token_hash', '=', p.tokenHash)
        .where('client_id', '=', p.clientId)
        .where('rotated_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', p.now)
        .where(sql<boolean>`scopes @> ${sql.val(p.scopes)}::text[]`)
        .where(sql<boolean>`resources @> ${sql.val(p.resources)}::text[]`)
        .where(chainHasNoRevokedMember)
        // RFC 9449 §5: a bound chain rotates only for a proof by its key; a refused one stays usable.
        .where(boundToKey(p.jkt))
        .returning([
          'family_id',
          'generation',
          'client_id',
          'sub',
          'scopes',
          'resources',
          'auth_time',
          'expires_at',
          'dpop_jkt',
        ])
        .returning(['acr', 'amr', 'sid']),
    )
    .insertInto('refresh_tokens')
    .columns(GENERATION_COLUMNS)
    .expression((eb) =>
      eb
        .selectFrom('old')
        .select([
          sql<string>`${p.newHash}::text`.as('token_hash'),
          'old.family_id',
          sql<number>`old.generation + 1`.as('generation'),
          ...CARRIED_OVER,
        ]),
    )
    .returning([...REFRESH_TOKEN_COLUMNS]),
);

/** The columns of a rotation batch's input rows (batchInput). */
const ROTATION_INPUT =
  'token_hash text, client_id text, new_hash text, scopes text[], resources text[], sealed text, jkt text, now timestamptz';

interface RotationInput {
  token_hash: string;
  client_id: string;
  new_hash: string;
  scopes: string[];
  resources: string[];
  sealed: string;
  jkt: string | null;
  now: Date;
}

/**
 * The same rotation for several tokens in one statement (src/db/batch.ts): every condition of `rotate`,
 * evaluated per row against that item's own values; each rotated row's successor comes back under its
 * new hash. The batch never holds one token twice.
 */
const rotateMany = precompiled<{ items: string }, RefreshTokenRow>((db, p) =>
  (db as Kysely<Database>)
    .with('input', (qb) => qb.selectFrom(batchInput<RotationInput>(p.items, ROTATION_INPUT)).selectAll())
    .with('old', (qb) =>
      qb
        .updateTable('refresh_tokens')
        .from('input')
        .set({
          rotated_at: sql<Date>`greatest(input.now, statement_timestamp())`,
          successor_sealed: sql<string>`input.sealed`,
        })
        .whereRef('refresh_tokens.token_hash', '=', 'input.token_hash')
        .whereRef('refresh_tokens.client_id', '=', 'input.client_id')
        .where('refresh_tokens.rotated_at', 'is', null)
        .where('refresh_tokens.revoked_at', 'is', null)
        .whereRef('refresh_tokens.expires_at', '>', 'input.now')
        .where(sql<boolean>`refresh_tokens.scopes @> input.scopes`)
        .where(sql<boolean>`refresh_tokens.resources @> input.resources`)
        .where((eb) => chainHasNoRevokedMember(eb as unknown as ExpressionBuilder<Database, 'refresh_tokens'>))
        .where(sql<boolean>`(refresh_tokens.dpop_jkt is null or refresh_tokens.dpop_jkt = input.jkt)`)
        .returning([
          'input.new_hash',
          'refresh_tokens.family_id',
          'refresh_tokens.generation',
          'refresh_tokens.client_id',
          'refresh_tokens.sub',
          'refresh_tokens.scopes',
          'refresh_tokens.resources',
          'refresh_tokens.auth_time',
          'refresh_tokens.expires_at',
          'refresh_tokens.dpop_jkt',
        ])
        .returning(['refresh_tokens.acr', 'refresh_tokens.amr', 'refresh_tokens.sid']),
    )
    .insertInto('refresh_tokens')
    .columns(GENERATION_COLUMNS)
    .expression((eb) =>
      eb
        .selectFrom('old')
        .select(['old.new_hash', 'old.family_id', sql<number>`old.generation + 1`.as('generation'), ...CARRIED_OVER]),
    )
    .returning([...REFRESH_TOKEN_COLUMNS]),
);

/** A Date as JSON for a batch's input (an ISO string, which `timestamptz` reads exactly). */
const rotationInput = (r: RotationRequest): RotationInput => ({
  token_hash: r.tokenHash,
  client_id: r.clientId,
  new_hash: r.newHash,
  scopes: [...r.scopes],
  resources: [...r.resources],
  sealed: r.sealedSuccessor,
  jkt: r.jkt,
  now: r.now,
});

const rotation = batched<RotationRequest, RefreshTokenRow>({
  name: 'refresh_token_rotation',
  max: 64,
  key: (r) => r.tokenHash,
  one: async (db, r) => {
    const rows = await rotate(db, {
      tokenHash: r.tokenHash,
      clientId: r.clientId,
      newHash: r.newHash,
      scopes: [...r.scopes],
      resources: [...r.resources],
      sealedSuccessor: r.sealedSuccessor,
      jkt: r.jkt,
      now: r.now,
    });
    return rows[0];
  },
  many: async (db, items) => {
    const rows = await rotateMany(db, { items: JSON.stringify(items.map(rotationInput)) });
    const bySuccessor = new Map(rows.map((row) => [row.token_hash, row]));
    return items.map((r) => bySuccessor.get(r.newHash));
  },
});

/**
 * Rotates a refresh token in one atomic statement (precompiled and prepared): the old generation is
 * marked rotated only if it is live, covers the requested scope and resources (so a refused request
 * leaves the token usable), and its chain has no revoked member (a revocation racing a rotation cannot
 * leave the new generation live); the next generation is inserted from it. Concurrent rotations of one
 * token serialise on the row lock and all but one find nothing, so a chain can never fork (the unique
 * (family, generation) constraint backs this up). The old generation keeps the new token value sealed
 * (`sealedSuccessor`) so that a retry within the grace window can be answered with it. Rotations of
 * different tokens asked for at the same time share one statement (src/db/batch.ts).
 */
export function rotateRefreshToken(db: Db, r: RotationRequest): Promise<RefreshTokenRow | undefined> {
  return rotation(db, r);
}

/** A refresh token as stored, whatever its state. */
export async function findRefreshToken(db: Db, tokenHash: string): Promise<RefreshTokenRow | undefined> {
  return db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/** The client of a chain if any generation of it is stored, or undefined (one probe of the (family_id, generation) index). */
export async function findRefreshChainClient(db: Db, familyId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('refresh_tokens')
    .select('client_id')
    .where('family_id', '=', familyId)
    .limit(1)
    .executeTakeFirst();
  return row?.client_id;
}

/** One generation of a chain as stored, whatever its state. */
export async function findRefreshTokenGeneration(
  db: Db,
  familyId: string,
  generation: number,
): Promise<RefreshTokenRow | undefined> {
  return db
    .selectFrom('refresh_tokens')
    .selectAll()
    .where('family_id', '=', familyId)
    .where('generation', '=', generation)
    .executeTakeFirst();
}

/**
 * A refresh token of this client that a refresh would accept now: not rotated away, not revoked,
 * before its chain's absolute expiry, and in a chain with no revoked member (the condition rotation
 * itself applies), or undefined. Precompiled and prepared (introspection of a refresh token is this one
 * statement); lookups asked for at the same time share one statement (src/db/batch.ts).
 */
export function findLiveRefreshToken(
  db: Db,
  tokenHash: string,
  clientId: string,
  now = new Date(),
): Promise<RefreshTokenRow | undefined> {
  return liveLookup(db, { tokenHash, clientId, now });
}

interface LiveLookup extends Record<string, unknown> {
  tokenHash: string;
  clientId: string;
  now: Date;
}

const findLive = precompiled<LiveLookup, RefreshTokenRow>((db, p) =>
  (db as Kysely<Database>)
    .selectFrom('refresh_tokens')
    .select([...REFRESH_TOKEN_COLUMNS])
    .where('token_hash', '=', p.tokenHash)
    .where('client_id', '=', p.clientId)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', p.now)
    .where(chainHasNoRevokedMember),
);

/**
 * The same lookup for several tokens: each row's conditions against its own client and time, each answer
 * under its item's ordinal (one token may be asked about twice in a batch, by two clients or at two times).
 */
const findLiveMany = precompiled<{ items: string }, RefreshTokenRow & { ord: number }>((db, p) =>
  (db as Kysely<Database>)
    .with('input', (qb) =>
      qb
        .selectFrom(
          batchInput<{ ord: number; token_hash: string; client_id: string; now: Date }>(
            p.items,
            'ord int, token_hash text, client_id text, now timestamptz',
          ),
        )
        .selectAll(),
    )
    .selectFrom('refresh_tokens')
    .innerJoin('input', (join) =>
      join
        .onRef('refresh_tokens.token_hash', '=', 'input.token_hash')
        .onRef('refresh_tokens.client_id', '=', 'input.client_id'),
    )
    .select(['input.ord', ...REFRESH_TOKEN_COLUMNS.map((column) => `refresh_tokens.${column}` as const)])
    .where('refresh_tokens.rotated_at', 'is', null)
    .where('refresh_tokens.revoked_at', 'is', null)
    .whereRef('refresh_tokens.expires_at', '>', 'input.now')
    .where((eb) => chainHasNoRevokedMember(eb as unknown as ExpressionBuilder<Database, 'refresh_tokens'>)),
);

const liveLookup = batched<LiveLookup, RefreshTokenRow>({
  name: 'refresh_token_lookup',
  max: 64,
  one: async (db, l) => (await findLive(db, l))[0],
  many: async (db, items) => {
    const input = items.map((l, ord) => ({ ord, token_hash: l.tokenHash, client_id: l.clientId, now: l.now }));
    const rows = await findLiveMany(db, { items: JSON.stringify(input) });
    const byOrd = new Map(rows.map(({ ord, ...row }) => [ord, row]));
    return items.map((_, ord) => byOrd.get(ord));
  },
});

/**
 * Revokes every live token of a chain; returns how many. A rotation committing while the UPDATE runs
 * adds a generation that statement's snapshot (READ COMMITTED) cannot see, so the UPDATE is repeated
 * until it finds nothing: each pass sees what committed before it, and once a member is revoked no new
 * rotation of the chain succeeds.
 */
export async function revokeFamily(db: Db, familyId: string, now = new Date()): Promise<number> {
  let total = 0;
  for (let pass = 0; pass < 10; pass++) {
    const result = await db
      .updateTable('refresh_tokens')
      .set({ revoked_at: now })
      .where('family_id', '=', familyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const revoked = Number(result.numUpdatedRows);
    if (revoked === 0) return total;
    total += revoked;
  }
  throw new Error(`refresh-token chain ${familyId} kept growing while being revoked`);
}
