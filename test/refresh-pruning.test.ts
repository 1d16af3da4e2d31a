import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { type Kysely, sql } from 'kysely';
import t from 'tap';
import type { Database } from '../src/db/database.js';
import { generateToken, hashSecret } from '../src/oauth/secrets.js';
import { chainIdOf } from '../src/oauth/tokens/refresh-chain.js';
import { createAuthorizationCode } from '../src/repositories/authorization-code.repository.js';
import { rotatedKeepSeconds, sweepExpired, type SweepOptions } from '../src/services/janitor.js';
import { basic } from './fixtures/clients.js';
import { buildTestApp } from './helper.js';
import { challengeOf } from './kit/pkce.js';

// The janitor deletes rotated refresh-token generations once nothing can need them (docs/refresh-tokens.md);
// these tests check that every answer the token endpoint gives stays what it was with the rows kept.

const ENV = { ISSUER: 'https://auth.example.com', SCOPES: 'read', RESOURCES: 'https://api.example.com' };
const REDIRECT = 'https://app.example.com/cb';
const HOUR = 3_600_000;
const ago = (ms: number): Date => new Date(Date.now() - ms);
const SWEEP: SweepOptions = { retentionSeconds: 3600, sessionIdleSeconds: 86400, accessTokenLifetimeSeconds: 3630 };
/** What the server derives for the default settings (grace 30 s, skew 30 s, 3 s connect, 10 s query). */
const DEFAULT_KEEP = rotatedKeepSeconds({
  graceSeconds: 30,
  clockSkewSeconds: 30,
  connectTimeoutMs: 3000,
  queryTimeoutMs: 10_000,
});

interface Client {
  id: string;
  secret: string;
}

async function webClient(app: FastifyInstance, name = 'Web app'): Promise<Client> {
  const { client, secret } = await app.clientAdmin.create({
    name,
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  return { id: client.client_id, secret: secret! };
}

function post(app: FastifyInstance, client: Client, path: '/token' | '/revoke', params: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.id, client.secret) },
    payload: new URLSearchParams(params).toString(),
  });
}

/** Redeems a fresh code and returns the first refresh token of the chain it starts. */
async function chain(app: FastifyInstance, client: Client): Promise<string> {
  const code = generateToken();
  const verifier = generateToken();
  await createAuthorizationCode(app.database.db, {
    code_hash: hashSecret(code),
    client_id: client.id,
    redirect_uri: REDIRECT,
    redirect_uri_given: true,
    code_challenge: challengeOf(verifier),
    scopes: ['read'],
    resources: ['https://api.example.com'],
    sub: 'user-1',
    auth_time: ago(60_000),
    expires_at: new Date(Date.now() + 60_000),
    consumed_at: null,
    family_id: null,
  });
  const res = await post(app, client, '/token', {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
  });
  if (res.statusCode !== 200) throw new Error(res.body);
  return res.json().refresh_token;
}

async function refresh(app: FastifyInstance, client: Client, token: string) {
  return post(app, client, '/token', { grant_type: 'refresh_token', refresh_token: token });
}

async function rotate(app: FastifyInstance, client: Client, token: string): Promise<string> {
  const res = await refresh(app, client, token);
  if (res.statusCode !== 200) throw new Error(res.body);
  return res.json().refresh_token;
}

/**
 * The sweep's clock a second ahead: with rotatedKeepSeconds 0, a generation rotated in the same millisecond
 * as the sweep reads its clock would otherwise stay (Postgres keeps microseconds, a Date milliseconds).
 */
const aSecondLater = () => new Date(Date.now() + 1000);

async function stored(db: Kysely<Database>, token: string): Promise<boolean> {
  const row = await db
    .selectFrom('refresh_tokens')
    .select('token_hash')
    .where('token_hash', '=', hashSecret(token))
    .executeTakeFirst();
  return row !== undefined;
}

async function chainRows(db: Kysely<Database>, token: string): Promise<number> {
  const row = await db
    .selectFrom('refresh_tokens')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('family_id', '=', chainIdOf(token)!)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function setRotatedAt(db: Kysely<Database>, token: string, at: Date): Promise<void> {
  await db.updateTable('refresh_tokens').set({ rotated_at: at }).where('token_hash', '=', hashSecret(token)).execute();
}

t.test('every token of a chain names it, and its stored id is derived from the tokens', async (t) => {
  const app = await buildTestApp(t, ENV);
  const client = await webClient(app);
  const first = await chain(app, client);
  const second = await rotate(app, client, first);
  t.equal(first.length, 43, 'the same 43-character form as every opaque token');
  t.equal(second.length, 43);
  t.not(first, second);
  t.equal(chainIdOf(first), chainIdOf(second), 'both name one chain');
  const row = await app.database.db
    .selectFrom('refresh_tokens')
    .select('family_id')
    .where('token_hash', '=', hashSecret(second))
    .executeTakeFirstOrThrow();
  t.equal(row.family_id, chainIdOf(first), 'the stored chain id is the one the tokens name');
  t.notOk(row.family_id.includes(first.slice(0, 22)), 'and it does not contain the tokens’ tag');
});

t.test('reuse of a pruned generation still revokes its chain, whoever presents it', async (t) => {
  const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const db = app.database.db;
  const client = await webClient(app);
  const other = await webClient(app, 'Other app');

  for (const presenter of ['its own client', 'another client'] as const) {
    const g0 = await chain(app, client);
    const g1 = await rotate(app, client, g0);
    const g2 = await rotate(app, client, g1);
    await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: 0, clock: aSecondLater });
    t.notOk(await stored(db, g0), 'generation 0 is deleted');
    t.notOk(await stored(db, g1), 'generation 1 is deleted');
    t.equal(await chainRows(db, g2), 1, 'the chain is one row: its newest generation');

    const reuse = await refresh(app, presenter === 'its own client' ? client : other, g0);
    t.equal(reuse.statusCode, 400);
    t.equal(reuse.json().error, 'invalid_grant', `reuse by ${presenter} is refused`);
    t.equal((await refresh(app, client, g2)).json().error, 'invalid_grant', '…and the live generation is revoked');
  }
});

t.test('revoking a pruned generation at /revoke revokes its chain, as with the row kept', async (t) => {
  const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const db = app.database.db;
  const client = await webClient(app);
  const other = await webClient(app, 'Other app');
  const g0 = await chain(app, client);
  const g1 = await rotate(app, client, g0);
  await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: 0, clock: aSecondLater });
  t.notOk(await stored(db, g0));
  t.equal((await post(app, other, '/revoke', { token: g0 })).statusCode, 200);
  t.equal((await refresh(app, client, g1)).statusCode, 200, "another client's revocation changes nothing");
});

t.test('the grace-window retry still works after older generations are pruned', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const client = await webClient(app);
  const g0 = await chain(app, client);
  const g1 = await rotate(app, client, g0);
  const g2 = await rotate(app, client, g1);
  // g0 was used long ago and its successor an hour ago; g1 was rotated just now, within the window.
  await setRotatedAt(db, g0, ago(2 * HOUR));
  await setRotatedAt(db, g1, ago(HOUR));
  const g3 = await rotate(app, client, g2);
  await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: DEFAULT_KEEP });
  t.notOk(await stored(db, g0), 'a generation whose successor was used long ago goes');
  t.ok(await stored(db, g1), 'one whose successor was used just now stays (a request in flight may be overtaken)');
  t.ok(await stored(db, g2), 'the one just rotated stays (a retry may come)');

  const retry = await refresh(app, client, g2);
  t.equal(retry.statusCode, 200, 'a retry within the window is answered');
  t.equal(retry.json().refresh_token, g3, 'with the same successor');
  t.equal((await refresh(app, client, g3)).statusCode, 200, 'the chain lives on: nothing was revoked by the retry');

  // Once the window has passed, the retried generation goes too, and presenting it is reuse.
  const later = (): Date => new Date(Date.now() + (DEFAULT_KEEP + 5) * 1000);
  await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: DEFAULT_KEEP, clock: later });
  t.notOk(await stored(db, g2));
  t.equal((await refresh(app, client, g2)).json().error, 'invalid_grant');
});

t.test('the janitor keeps a chain at its live generation however often it is refreshed', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const client = await webClient(app);
  const tokens = [await chain(app, client), await chain(app, client), await chain(app, client)];
  // The sweep's clock runs past the keep window each round, as a steady load does between sweeps.
  const later = (): Date => new Date(Date.now() + (DEFAULT_KEEP + 5) * 1000);
  for (let round = 0; round < 15; round++) {
    for (let i = 0; i < tokens.length; i++) tokens[i] = await rotate(app, client, tokens[i]!);
    await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: DEFAULT_KEEP, clock: later });
    for (const token of tokens) t.equal(await chainRows(db, token), 1, `round ${round}: one row per chain`);
  }
  for (const token of tokens) t.equal((await refresh(app, client, token)).statusCode, 200, 'every chain still works');
});

t.test('a chain from before tokens named their chain keeps its rotated generations', async (t) => {
  const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const db = app.database.db;
  const client = await webClient(app);
  const legacy = generateToken();
  await db
    .insertInto('refresh_tokens')
    .values({
      token_hash: hashSecret(legacy),
      family_id: randomBytes(16).toString('base64url'),
      generation: 0,
      client_id: client.id,
      sub: 'user-1',
      scopes: ['read'],
      resources: ['https://api.example.com'],
      auth_time: ago(60_000),
      expires_at: new Date(Date.now() + HOUR),
      rotated_at: null,
      revoked_at: null,
      successor_sealed: null,
    })
    .execute();
  const next = await rotate(app, client, legacy);
  await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: 0, clock: aSecondLater });
  t.ok(await stored(db, legacy), 'its rotated generation stays: the old token does not name the chain');
  t.equal((await refresh(app, client, legacy)).json().error, 'invalid_grant', 'reuse is still detected…');
  t.equal((await refresh(app, client, next)).json().error, 'invalid_grant', '…and revokes the chain');
});

t.test('a backlog sweep deletes every expired row and nothing live', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const client = await webClient(app);
  const schema = app.config.database.schema;
  const live = [await chain(app, client), await chain(app, client)];
  live.push(await rotate(app, client, live[1]!)); // a just-rotated generation: within the keep window
  // Expired chains and codes, several generations each, written the way the bench seeds them.
  await sql`
    insert into ${sql.table(`${schema}.refresh_tokens`)} (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time,
                                expires_at, rotated_at)
    select 'expired-' || i, 'c.expired-' || (i / 4), i % 4, ${client.id}, 'user-1', '{read}', '{}', now(),
           now() - interval '2 hours', case when i % 4 < 3 then now() - interval '3 hours' end
    from generate_series(1, 3000) as i`.execute(app.database.root);
  await sql`
    insert into ${sql.table(`${schema}.authorization_codes`)} (code_hash, client_id, redirect_uri, redirect_uri_given, code_challenge, scopes,
                                     resources, sub, auth_time, expires_at, consumed_at)
    select 'expired-' || i, ${client.id}, ${REDIRECT}, true, 'x', '{read}', '{}', 'user-1', now(),
           now() - interval '2 hours', case when i % 2 = 0 then now() - interval '3 hours' end
    from generate_series(1, 2000) as i`.execute(app.database.root);
  await sql`
    insert into ${sql.table(`${schema}.authorization_codes`)} (code_hash, client_id, redirect_uri, redirect_uri_given, code_challenge, scopes,
                                     resources, sub, auth_time, expires_at, consumed_at)
    select 'live-' || i, ${client.id}, ${REDIRECT}, true, 'x', '{read}', '{}', 'user-1', now(),
           now() + interval '1 minute', case when i % 2 = 0 then now() end
    from generate_series(1, 500) as i`.execute(app.database.root);
  const count = async (table: 'refresh_tokens' | 'authorization_codes', liveOnly: boolean): Promise<number> => {
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('client_id', '=', client.id)
      .where('expires_at', liveOnly ? '>' : '<=', new Date())
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };
  const before = { tokens: await count('refresh_tokens', true), codes: await count('authorization_codes', true) };
  t.equal(await count('refresh_tokens', false), 3000);
  // Small page ranges, so the sweep takes many statements.
  await sweepExpired(db, { ...SWEEP, rotatedKeepSeconds: DEFAULT_KEEP, chunkPages: 4 });
  t.equal(await count('refresh_tokens', false), 0, 'every expired generation went');
  t.equal(await count('authorization_codes', false), 0, 'every expired code went, used or not');
  t.same(
    { tokens: await count('refresh_tokens', true), codes: await count('authorization_codes', true) },
    before,
    'live rows are all still there',
  );
  for (const token of [live[0]!, live[2]!]) t.equal((await refresh(app, client, token)).statusCode, 200);
});
