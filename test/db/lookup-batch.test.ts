import { randomBytes } from 'node:crypto';
import t from 'tap';
import { batchCounts } from '../../src/db/batch.js';
import type { Db } from '../../src/db/database.js';
import type { NewRefreshTokenRow, RefreshTokenRow } from '../../src/db/tables/refresh-token.table.js';
import { findLiveRefreshToken } from '../../src/repositories/refresh-token.repository.js';
import { grantRevokedSince } from '../../src/repositories/user-grant.repository.js';
import { storedClient, storedGeneration } from '../fixtures/clients.js';
import { testDatabase } from '../helper.js';

// Introspection's reads, asked for at the same time, share one statement (src/db/batch.ts). Each case is
// answered once alone and once in a batch with every other case: the answers must be the same.

const id = () => randomBytes(12).toString('base64url');
const now = new Date();
const HOUR = 3600_000;

/** The change in a batched statement's counts while `run` runs. */
async function counted<T>(
  name: string,
  run: () => Promise<T>,
): Promise<{ result: T; statements: number; items: number }> {
  const before = { statements: 0, items: 0, ...batchCounts().get(name) };
  const result = await run();
  const after = batchCounts().get(name)!;
  return { result, statements: after.statements - before.statements, items: after.items - before.items };
}

interface LookupCase {
  name: string;
  row?: Partial<NewRefreshTokenRow>;
  revokedMember?: boolean;
  otherClient?: boolean;
  unknown?: boolean;
  at?: Date;
  live: boolean;
}

const LOOKUPS: LookupCase[] = [
  { name: 'a live token', live: true },
  { name: 'another client', otherClient: true, live: false },
  { name: 'a rotated token', row: { rotated_at: now }, live: false },
  { name: 'a revoked token', row: { revoked_at: now }, live: false },
  { name: 'an expired chain', row: { expires_at: new Date(now.getTime() - 1) }, live: false },
  {
    name: 'asked after the chain expired',
    row: { expires_at: new Date(now.getTime() + 500) },
    at: new Date(now.getTime() + 1000),
    live: false,
  },
  { name: 'a chain with a revoked member', revokedMember: true, live: false },
  { name: 'an unknown token', unknown: true, live: false },
  { name: 'a bound chain', row: { dpop_jkt: 'key-a', acr: 'urn:mfa', amr: ['pwd'], sid: 's-1' }, live: true },
];

t.test('refresh-token lookups in a batch answer as they do alone', async (t) => {
  const { db } = await testDatabase();
  const clientId = await storedClient(db, ['read'], ['https://api.example']);
  const otherId = await storedClient(db, ['read'], ['https://api.example']);
  const arrange = async (c: LookupCase) => {
    const familyId = id();
    const tokenHash = id();
    const base = { family_id: familyId, client_id: clientId, scopes: ['read'], resources: ['https://api.example'] };
    const generation = (values: Partial<NewRefreshTokenRow>) =>
      storedGeneration(db, { ...base, auth_time: now, expires_at: new Date(now.getTime() + HOUR), ...values });
    if (c.revokedMember) await generation({ rotated_at: now, revoked_at: now });
    if (!c.unknown) await generation({ token_hash: tokenHash, generation: c.revokedMember ? 1 : 0, ...c.row });
    return { tokenHash, clientId: c.otherClient ? otherId : clientId, at: c.at ?? now };
  };
  const ask = (db: Db, q: { tokenHash: string; clientId: string; at: Date }) =>
    findLiveRefreshToken(db, q.tokenHash, q.clientId, q.at);

  const alone: Array<RefreshTokenRow | undefined> = [];
  for (const c of LOOKUPS) alone.push(await ask(db, await arrange(c)));
  const questions: Array<{ tokenHash: string; clientId: string; at: Date }> = [];
  for (const c of LOOKUPS) questions.push(await arrange(c));
  const {
    result: together,
    statements,
    items,
  } = await counted('refresh_token_lookup', () => Promise.all(questions.map((q) => ask(db, q))));
  t.equal(statements, 1, 'one statement');
  t.equal(items, LOOKUPS.length, 'for every lookup');
  for (const [i, c] of LOOKUPS.entries()) {
    t.equal(alone[i] !== undefined, c.live, `${c.name}: alone, ${c.live ? 'live' : 'not live'}`);
    t.equal(together[i] !== undefined, c.live, `${c.name}: in a batch, ${c.live ? 'live' : 'not live'}`);
    if (!alone[i] || !together[i]) continue;
    t.equal(together[i].token_hash, questions[i]!.tokenHash, `${c.name}: its own row`);
    const { token_hash: _a, family_id: _b, created_at: _c, ...single } = alone[i];
    const { token_hash: _d, family_id: _e, created_at: _f, ...batch } = together[i];
    t.same(batch, single, `${c.name}: the same row as alone`);
  }
});

t.test('grant-revocation checks in a batch answer as they do alone', async (t) => {
  const { db } = await testDatabase();
  const [a, b, c] = [id(), id(), id()];
  const revokedAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
  await db
    .insertInto('grant_revocations')
    .values([
      { sub: a, client_id: 'client-1', revoked_at: revokedAt },
      { sub: b, client_id: null, revoked_at: revokedAt },
    ])
    .execute();
  const second = 1000;
  const questions: Array<[string, string, Date, boolean, string]> = [
    [a, 'client-1', new Date(revokedAt.getTime() - second), true, 'issued before the revocation'],
    [a, 'client-1', revokedAt, true, 'issued in the same second (counts as revoked)'],
    [a, 'client-1', new Date(revokedAt.getTime() + second), false, 'issued after'],
    [a, 'client-2', new Date(revokedAt.getTime() - second), false, 'another client of the same user'],
    [b, 'client-9', new Date(revokedAt.getTime() - second), true, 'every client of a user revoked'],
    [c, 'client-1', new Date(revokedAt.getTime() - second), false, 'another user'],
  ];
  const alone: boolean[] = [];
  for (const [sub, client, iat] of questions) alone.push(await grantRevokedSince(db, sub, client, iat));
  const { result: together, statements } = await counted('grant_revocation_check', () =>
    Promise.all(questions.map(([sub, client, iat]) => grantRevokedSince(db, sub, client, iat))),
  );
  t.equal(statements, 1, 'one statement');
  for (const [i, [, , , revoked, name]] of questions.entries()) {
    t.equal(alone[i], revoked, `${name}: alone`);
    t.equal(together[i], revoked, `${name}: in a batch`);
  }
});

t.test('one token asked about by two clients, or at two times, in one batch: each gets its own answer', async (t) => {
  const { db } = await testDatabase();
  const owner = await storedClient(db, ['read'], ['https://api.example']);
  const stranger = await storedClient(db, ['read'], ['https://api.example']);
  const tokenHash = id();
  await storedGeneration(db, {
    token_hash: tokenHash,
    family_id: id(),
    client_id: owner,
    scopes: ['read'],
    resources: ['https://api.example'],
    expires_at: new Date(now.getTime() + HOUR),
  });
  const later = new Date(now.getTime() + 2 * HOUR);
  const { result, statements } = await counted('refresh_token_lookup', () =>
    Promise.all([
      findLiveRefreshToken(db, tokenHash, stranger, now),
      findLiveRefreshToken(db, tokenHash, owner, now),
      findLiveRefreshToken(db, tokenHash, owner, later),
      findLiveRefreshToken(db, tokenHash, stranger, now),
    ]),
  );
  t.equal(statements, 1, 'all four in one statement (identical reads are not held back)');
  t.same(
    result.map((row) => row?.client_id),
    [undefined, owner, undefined, undefined],
    "only its own client, before its expiry, sees it; another client's question never gets its row",
  );
});
