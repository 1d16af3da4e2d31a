import { randomBytes } from 'node:crypto';
import t from 'tap';
import { batchCounts } from '../../src/db/batch.js';
import type { Db } from '../../src/db/database.js';
import type { NewAuthorizationCodeRow } from '../../src/db/tables/authorization-code.table.js';
import {
  type CodeRedemption,
  type NewChain,
  type RedeemedCode,
  findRefreshToken,
  redeemCode,
} from '../../src/repositories/refresh-token.repository.js';
import { storedClient } from '../fixtures/clients.js';
import { testDatabase } from '../helper.js';

// Redemptions asked for at the same time share one statement (src/db/batch.ts). Each case below is a code
// and a token request for it; it is redeemed once alone and once in a batch with every other case, on twin
// rows, and both must give the same answer and leave the same rows: the batch statement keeps every
// condition of the single one.

const id = () => randomBytes(12).toString('base64url');
const now = new Date();
const MINUTE = 60_000;
const REDIRECT = 'https://app.example/cb';

const client = (db: Db) => storedClient(db, ['read'], ['https://api.example', 'https://files.example'], REDIRECT);

interface Case {
  name: string;
  code?: Partial<NewAuthorizationCodeRow>;
  request?: (r: CodeRedemption, other: { clientId: string }) => Partial<CodeRedemption>;
  /** Start a refresh-token chain (bound to this key, or unbound with null). */
  chain?: { jkt: string | null };
  redeems: boolean;
}

const CASES: Case[] = [
  { name: 'a fresh code', redeems: true },
  { name: 'a fresh code starting a chain', chain: { jkt: null }, redeems: true },
  { name: 'a chain bound to the proof key', chain: { jkt: 'key-a' }, request: () => ({ jkt: 'key-a' }), redeems: true },
  {
    name: 'another client',
    request: (_r, other) => ({ clientId: other.clientId }),
    chain: { jkt: null },
    redeems: false,
  },
  { name: 'another PKCE challenge', request: () => ({ codeChallenge: 'other' }), chain: { jkt: null }, redeems: false },
  {
    name: 'a consumed code',
    code: { consumed_at: new Date(now.getTime() - 1000) },
    chain: { jkt: null },
    redeems: false,
  },
  { name: 'an expired code', code: { expires_at: new Date(now.getTime() - 1) }, redeems: false },
  {
    name: 'a request dated after the code expired',
    code: { expires_at: new Date(now.getTime() + 500) },
    request: () => ({ now: new Date(now.getTime() + 1000) }),
    redeems: false,
  },
  { name: 'the redirect_uri repeated', request: () => ({ redirectUri: REDIRECT }), redeems: true },
  { name: 'another redirect_uri', request: () => ({ redirectUri: `${REDIRECT}x` }), redeems: false },
  { name: 'no redirect_uri where the request named one', code: { redirect_uri_given: true }, redeems: false },
  {
    name: 'a redirect_uri where the request named none',
    code: { redirect_uri_given: false },
    request: () => ({ redirectUri: REDIRECT }),
    redeems: true,
  },
  { name: 'a granted resource', request: () => ({ resources: ['https://files.example'] }), redeems: true },
  { name: 'a resource not granted', request: () => ({ resources: ['https://other.example'] }), redeems: false },
  {
    name: 'a bound code, proof by its key',
    code: { dpop_jkt: 'key-a' },
    request: () => ({ jkt: 'key-a' }),
    redeems: true,
  },
  { name: 'a bound code, another key', code: { dpop_jkt: 'key-a' }, request: () => ({ jkt: 'key-b' }), redeems: false },
  { name: 'a bound code, no proof', code: { dpop_jkt: 'key-a' }, chain: { jkt: null }, redeems: false },
  {
    name: 'OIDC: nonce, acr, amr and sid answered',
    code: { nonce: 'n-0S6', acr: 'urn:mfa', amr: ['pwd', 'otp'], sid: 'session-1' },
    chain: { jkt: null },
    redeems: true,
  },
];

interface Arranged {
  code: CodeRedemption;
  chain: NewChain | null;
}

async function arrange(db: Db, clientId: string, otherId: string, c: Case): Promise<Arranged> {
  const codeHash = id();
  await db
    .insertInto('authorization_codes')
    .values({
      code_hash: codeHash,
      client_id: clientId,
      redirect_uri: REDIRECT,
      redirect_uri_given: false,
      code_challenge: 'challenge',
      scopes: ['read'],
      resources: ['https://api.example', 'https://files.example'],
      sub: 'alice',
      auth_time: now,
      expires_at: new Date(now.getTime() + MINUTE),
      consumed_at: null,
      family_id: null,
      ...c.code,
    })
    .execute();
  const base: CodeRedemption = {
    codeHash,
    clientId,
    codeChallenge: 'challenge',
    redirectUri: null,
    resources: [],
    jkt: null,
    now,
  };
  const chain = c.chain
    ? { familyId: id(), tokenHash: id(), expiresAt: new Date(now.getTime() + 60 * MINUTE), jkt: c.chain.jkt }
    : null;
  return { code: { ...base, ...c.request?.(base, { clientId: otherId }) }, chain };
}

/** What a redemption left in the database: the code's state and the chain's first token. */
async function stored(db: Db, a: Arranged) {
  const code = await db
    .selectFrom('authorization_codes')
    .select(['consumed_at', 'family_id'])
    .where('code_hash', '=', a.code.codeHash)
    .executeTakeFirstOrThrow();
  const token = a.chain ? await findRefreshToken(db, a.chain.tokenHash) : undefined;
  return {
    consumed: code.consumed_at?.getTime() ?? null,
    family: code.family_id,
    token: token && {
      family: token.family_id,
      generation: token.generation,
      client: token.client_id,
      scopes: token.scopes,
      resources: token.resources,
      expires: token.expires_at.getTime(),
      jkt: token.dpop_jkt,
      acr: token.acr,
      amr: token.amr,
      sid: token.sid,
    },
  };
}

/** A chain's family id differs between the twins: compare the rest, and that the code names its chain. */
const comparable = (s: Awaited<ReturnType<typeof stored>>, a: Arranged) => ({
  ...s,
  family: s.family === (a.chain?.familyId ?? null) ? 'its own' : s.family,
  token: s.token && { ...s.token, family: s.token.family === a.chain?.familyId ? 'its own' : s.token.family },
});

const answer = (r: RedeemedCode | undefined, a: Arranged) =>
  r && { ...r, family_id: r.family_id === (a.chain?.familyId ?? null) ? 'its own' : r.family_id };

t.test('a batch of redemptions answers each exactly as the single statement does', async (t) => {
  const { db } = await testDatabase();
  const clientId = await client(db);
  const otherId = await client(db);

  const aloneArranged: Arranged[] = [];
  const alone: Array<RedeemedCode | undefined> = [];
  for (const c of CASES) {
    const a = await arrange(db, clientId, otherId, c);
    aloneArranged.push(a);
    alone.push(await redeemCode(db, a.code, a.chain));
  }
  const arranged: Arranged[] = [];
  for (const c of CASES) arranged.push(await arrange(db, clientId, otherId, c));
  const before = { ...batchCounts().get('authorization_code_redemption')! };
  const together = await Promise.all(arranged.map((a) => redeemCode(db, a.code, a.chain)));
  const after = batchCounts().get('authorization_code_redemption')!;
  t.equal(after.statements - before.statements, 1, 'together: one batch statement');
  t.equal(after.items - before.items, CASES.length, 'carrying every request');
  t.equal(after.fallbacks, before.fallbacks, 'which did not fail');

  for (const [i, c] of CASES.entries()) {
    t.equal(alone[i] !== undefined, c.redeems, `${c.name}: alone, ${c.redeems ? 'redeemed' : 'refused'}`);
    t.equal(together[i] !== undefined, c.redeems, `${c.name}: in a batch, ${c.redeems ? 'redeemed' : 'refused'}`);
    t.same(answer(together[i], arranged[i]!), answer(alone[i], aloneArranged[i]!), `${c.name}: the same answer`);
    const single = comparable(await stored(db, aloneArranged[i]!), aloneArranged[i]!);
    const batch = comparable(await stored(db, arranged[i]!), arranged[i]!);
    t.same(batch, single, `${c.name}: the same rows left behind`);
    if (c.redeems && c.chain) t.equal(batch.token?.generation, 0, `${c.name}: the chain's first token stored`);
    const consumedBefore = (c.code?.consumed_at as Date | undefined)?.getTime() ?? null;
    if (!c.redeems) t.equal(batch.consumed, consumedBefore, `${c.name}: the code is not burnt (or burnt again)`);
  }
});

t.test('one code redeemed twice at once is redeemed once, and starts one chain', async (t) => {
  const { db } = await testDatabase();
  const clientId = await client(db);
  const a = await arrange(db, clientId, clientId, { name: 'fresh', redeems: true });
  const chains = [0, 1, 2].map(() => ({
    familyId: id(),
    tokenHash: id(),
    expiresAt: new Date(now.getTime() + MINUTE),
    jkt: null,
  }));
  const results = await Promise.all(chains.map((chain) => redeemCode(db, a.code, chain)));
  t.equal(results.filter((r) => r !== undefined).length, 1, 'exactly one redemption of three');
  const stored = await Promise.all(chains.map((chain) => findRefreshToken(db, chain.tokenHash)));
  t.equal(stored.filter((row) => row !== undefined).length, 1, 'one chain started');
});
