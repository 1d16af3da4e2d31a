import { randomBytes } from 'node:crypto';
import t from 'tap';
import { batchCounts, runsAloneAfter } from '../../src/db/batch.js';
import type { Db } from '../../src/db/database.js';
import type { NewRefreshTokenRow, RefreshTokenRow } from '../../src/db/tables/refresh-token.table.js';
import {
  type RotationRequest,
  findRefreshToken,
  rotateRefreshToken,
} from '../../src/repositories/refresh-token.repository.js';
import { storedClient, storedGeneration } from '../fixtures/clients.js';
import { testDatabase } from '../helper.js';

// Rotations asked for at the same time share one statement (src/db/batch.ts). Each case below is a token
// and a request for it; it is rotated once alone and once in a batch with every other case, on twin rows,
// and both must give the same answer: the batch statement keeps every condition of the single one.

const id = () => randomBytes(12).toString('base64url');
const HOUR = 3600_000;

const client = (db: Db) => storedClient(db, ['read', 'write'], ['https://api.example']);

interface Case {
  name: string;
  /** The stored generation (its chain gets a fresh family and hash). */
  row?: Partial<NewRefreshTokenRow>;
  /** A revoked earlier generation in the same chain. */
  revokedMember?: boolean;
  /** What the request changes from a plain, matching one. */
  request?: (r: RotationRequest, other: { clientId: string }) => Partial<RotationRequest>;
  rotates: boolean;
}

const now = new Date();
const CASES: Case[] = [
  { name: 'a live token', rotates: true },
  {
    name: 'a narrower scope and resource',
    request: () => ({ scopes: ['read'], resources: ['https://api.example'] }),
    rotates: true,
  },
  { name: 'a scope beyond the grant', request: () => ({ scopes: ['read', 'admin'] }), rotates: false },
  { name: 'a resource beyond the grant', request: () => ({ resources: ['https://other.example'] }), rotates: false },
  { name: 'another client', request: (_r, other) => ({ clientId: other.clientId }), rotates: false },
  { name: 'a token already rotated', row: { rotated_at: new Date(now.getTime() - 1000) }, rotates: false },
  { name: 'a revoked token', row: { revoked_at: new Date(now.getTime() - 1000) }, rotates: false },
  { name: 'an expired chain', row: { expires_at: new Date(now.getTime() - 1) }, rotates: false },
  { name: 'a chain with a revoked member', revokedMember: true, rotates: false },
  {
    name: 'a bound chain, proof by its key',
    row: { dpop_jkt: 'key-a' },
    request: () => ({ jkt: 'key-a' }),
    rotates: true,
  },
  {
    name: 'a bound chain, proof by another key',
    row: { dpop_jkt: 'key-a' },
    request: () => ({ jkt: 'key-b' }),
    rotates: false,
  },
  { name: 'a bound chain, no proof', row: { dpop_jkt: 'key-a' }, rotates: false },
  { name: 'an unbound chain, with a proof', request: () => ({ jkt: 'key-c' }), rotates: true },
  {
    name: 'a request dated after the chain expired',
    row: { expires_at: new Date(now.getTime() + 500) },
    request: () => ({ now: new Date(now.getTime() + 1000) }),
    rotates: false,
  },
  {
    name: 'OIDC claims carried over',
    row: { acr: 'urn:mfa', amr: ['pwd', 'otp'], sid: 'session-1' },
    rotates: true,
  },
];

/** Stores the case's token (and its revoked member) and returns the request for it. */
async function arrange(db: Db, clientId: string, otherId: string, c: Case): Promise<RotationRequest> {
  const familyId = id();
  const tokenHash = id();
  const chain = {
    family_id: familyId,
    client_id: clientId,
    scopes: ['read', 'write'],
    resources: ['https://api.example'],
  };
  const generation = (values: Partial<NewRefreshTokenRow>) =>
    storedGeneration(db, { ...chain, auth_time: now, expires_at: new Date(now.getTime() + HOUR), ...values });
  if (c.revokedMember) await generation({ rotated_at: now, revoked_at: now });
  await generation({ token_hash: tokenHash, generation: c.revokedMember ? 1 : 0, ...c.row });
  const base: RotationRequest = {
    tokenHash,
    clientId,
    newHash: id(),
    scopes: [],
    resources: [],
    sealedSuccessor: `sealed-${id()}`,
    jkt: null,
    now,
  };
  return { ...base, ...c.request?.(base, { clientId: otherId }) };
}

t.test('a batch of rotations answers each exactly as the single statement does', async (t) => {
  const { db } = await testDatabase();
  const clientId = await client(db);
  const otherId = await client(db);

  // Alone: one at a time, so every call is a lone item (the single statement).
  const alone: Array<RefreshTokenRow | undefined> = [];
  for (const c of CASES) alone.push(await rotateRefreshToken(db, await arrange(db, clientId, otherId, c)));
  // Together: every request made in the same turn of the event loop.
  const requests: RotationRequest[] = [];
  for (const c of CASES) requests.push(await arrange(db, clientId, otherId, c));
  const before = { ...batchCounts().get('refresh_token_rotation')! };
  const together = await Promise.all(requests.map((r) => rotateRefreshToken(db, r)));
  const after = batchCounts().get('refresh_token_rotation')!;
  t.equal(after.statements - before.statements, 1, 'together: one batch statement');
  t.equal(after.items - before.items, CASES.length, 'carrying every request');
  t.equal(after.fallbacks, before.fallbacks, 'which did not fail');

  CASES.forEach((c, i) => {
    const single = alone[i];
    const batch = together[i];
    t.equal(single !== undefined, c.rotates, `${c.name}: alone, ${c.rotates ? 'rotated' : 'refused'}`);
    t.equal(batch !== undefined, c.rotates, `${c.name}: in a batch, ${c.rotates ? 'rotated' : 'refused'}`);
    if (!single || !batch) return;
    const request = requests[i]!;
    t.equal(batch.token_hash, request.newHash, `${c.name}: its own successor`);
    const { token_hash: _a, family_id: _b, created_at: _c, ...sameSingle } = single;
    const { token_hash: _d, family_id: _e, created_at: _f, ...sameBatch } = batch;
    t.same(sameBatch, sameSingle, `${c.name}: the same successor row as alone`);
  });

  // What a rotation leaves on the old generation: rotated at (or after) the request, the successor sealed.
  for (const [i, c] of CASES.entries()) {
    const old = await findRefreshToken(db, requests[i]!.tokenHash);
    if (c.rotates) {
      t.ok(old!.rotated_at!.getTime() >= requests[i]!.now.getTime() - 1, `${c.name}: old generation rotated`);
      t.equal(old!.successor_sealed, requests[i]!.sealedSuccessor, `${c.name}: its successor sealed on it`);
    } else t.equal(old!.successor_sealed ?? null, null, `${c.name}: nothing sealed on a refused token`);
  }
});

t.test('one token presented twice at once rotates once: the chain never forks', async (t) => {
  const { db } = await testDatabase();
  const clientId = await client(db);
  const request = await arrange(db, clientId, clientId, { name: 'live', rotates: true });
  const twice = await Promise.all(
    [0, 1, 2].map((n) => rotateRefreshToken(db, { ...request, newHash: `${request.newHash}-${n}` })),
  );
  t.equal(twice.filter((row) => row !== undefined).length, 1, 'exactly one rotation of three');
  // Which one wins is Postgres's row lock's to decide: the three go in separate statements (never one batch),
  // sent on separate connections in successive turns, so send order is not lock order on a busy machine.
  const winner = twice.findIndex((row) => row !== undefined);
  t.equal(twice[winner]!.token_hash, `${request.newHash}-${winner}`, 'the winner is answered with its own successor');
  const family = await db
    .selectFrom('refresh_tokens')
    .select(['generation', 'token_hash'])
    .where('family_id', '=', twice[winner]!.family_id)
    .execute();
  t.same(family.map((row) => row.generation).sort(), [0, 1], 'one successor');
  t.equal(
    family.find((row) => row.generation === 1)?.token_hash,
    `${request.newHash}-${winner}`,
    'and it is the one the winner was given',
  );
});

t.test('a batch larger than a statement holds is split, and every item answered', async (t) => {
  const { db } = await testDatabase();
  const clientId = await client(db);
  const requests: RotationRequest[] = [];
  for (let i = 0; i < 150; i++) requests.push(await arrange(db, clientId, clientId, { name: 'live', rotates: true }));
  const before = { ...batchCounts().get('refresh_token_rotation')! };
  const rows = await Promise.all(requests.map((r) => rotateRefreshToken(db, r)));
  const after = batchCounts().get('refresh_token_rotation')!;
  t.equal(after.statements - before.statements, 3, '64 + 64 + 22');
  t.same(
    rows.map((row) => row?.token_hash),
    requests.map((r) => r.newHash),
    'each of 150 rotated, each to its own successor',
  );
});

t.test("a batch statement that fails on one item's data runs each item alone: only that item fails", async (t) => {
  const { db } = await testDatabase();
  const clientId = await client(db);
  const requests: RotationRequest[] = [];
  for (let i = 0; i < 5; i++) requests.push(await arrange(db, clientId, clientId, { name: 'live', rotates: true }));
  // Postgres text cannot hold NUL: the batch's JSON input is refused whole (22P05), a lone statement's
  // parameter alone (22021).
  requests.push(
    await arrange(db, clientId, clientId, { name: 'bad', request: () => ({ scopes: ['re\u0000ad'] }), rotates: false }),
  );
  const before = { ...batchCounts().get('refresh_token_rotation')! };
  const outcomes = await Promise.allSettled(requests.map((r) => rotateRefreshToken(db, r)));
  const after = batchCounts().get('refresh_token_rotation')!;
  t.equal(after.fallbacks - before.fallbacks, 6, 'the batch failed, and its six items ran alone');
  t.same(
    outcomes.slice(0, 5).map((o) => (o.status === 'fulfilled' ? o.value?.token_hash : o.status)),
    requests.slice(0, 5).map((r) => r.newHash),
    'the five good rotations happened',
  );
  t.equal(outcomes[5]!.status, 'rejected', 'the bad one failed with its own error');
  t.equal((await findRefreshToken(db, requests[5]!.tokenHash))!.rotated_at, null, 'and rotated nothing');
});

t.test('which batch failures send the items to run alone', async (t) => {
  for (const code of ['40P01', '40001', '22P05', '22021', '23505', '55P03'])
    t.ok(runsAloneAfter(Object.assign(new Error('x'), { code })), `${code}: rolled back; each item alone`);
  // 40003: the batch may have committed; 57014: one slow statement must not become 64 on a loaded database.
  for (const code of ['40003', '57P01', '57014', '08006', '53300', '42P01', 'ECONNRESET', undefined])
    t.notOk(runsAloneAfter(Object.assign(new Error('x'), { code })), `${code}: every item fails with it`);
  t.notOk(runsAloneAfter(null));
});
