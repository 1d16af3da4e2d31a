import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Kysely, sql } from 'kysely';
import t from 'tap';
import { openDatabase } from '../src/db/connect.js';
import type { Database, SchemalessDb } from '../src/db/database.js';
import { generateToken, hashSecret } from '../src/oauth/secrets.js';
import { createAuthorizationCode } from '../src/repositories/authorization-code.repository.js';
import { createAuthorizationRequest } from '../src/repositories/authorization-request.repository.js';
import { insertSession } from '../src/repositories/session.repository.js';
import { Pacer, SweepStopped, sweepExpired, sweepOnce } from '../src/services/janitor.js';
import { basic } from './fixtures/clients.js';
import { buildTestApp, TEST_DATABASE_URL, testConfig, testDatabase, testEnv } from './helper.js';
import { CLI, run } from './process.js';
import { challengeOf } from './kit/pkce.js';

const ENV = { ISSUER: 'https://auth.example.com', SCOPES: 'read', RESOURCES: 'https://api.example.com' };
const REDIRECT = 'https://app.example.com/cb';
const HOUR = 3_600_000;
const ago = (ms: number): Date => new Date(Date.now() - ms);

async function webClient(app: FastifyInstance) {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Web app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  return { id: client.client_id, secret: secret! };
}

/** A pending authorization request expiring at `expires`. */
async function request(db: Kysely<Database>, clientId: string, expires: Date): Promise<string> {
  const id = randomBytes(16).toString('base64url');
  await createAuthorizationRequest(db, {
    id,
    client_id: clientId,
    redirect_uri: REDIRECT,
    redirect_uri_given: true,
    state: null,
    scopes: ['read'],
    resources: ['https://api.example.com'],
    code_challenge: randomBytes(32).toString('base64url'),
    prompt: null,
    max_age: null,
    login_hint: null,
    ui_locales: null,
    binding_hash: hashSecret(generateToken()),
    session_hash: null,
    expires_at: expires,
    answered_at: null,
    completed_at: null,
  });
  return id;
}

/** An authorization code expiring at `expires`; returns the code and its PKCE verifier. */
async function code(
  db: Kysely<Database>,
  clientId: string,
  expires: Date,
): Promise<{ code: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const value = generateToken();
  await createAuthorizationCode(db, {
    code_hash: hashSecret(value),
    client_id: clientId,
    redirect_uri: REDIRECT,
    redirect_uri_given: true,
    code_challenge: challengeOf(verifier),
    scopes: ['read'],
    resources: ['https://api.example.com'],
    sub: 'user-1',
    auth_time: ago(60_000),
    expires_at: expires,
    consumed_at: null,
    family_id: null,
  });
  return { code: value, verifier };
}

/** A session with the given times; returns its id hash. */
async function session(
  db: Kysely<Database>,
  times: { expires: Date; lastSeen?: Date; revoked?: Date },
): Promise<string> {
  const idHash = hashSecret(generateToken());
  await insertSession(db, {
    id_hash: idHash,
    sub: 'user-1',
    auth_time: ago(60_000),
    expires_at: times.expires,
    last_seen_at: times.lastSeen ?? new Date(),
  });
  if (times.revoked)
    await db.updateTable('sessions').set({ revoked_at: times.revoked }).where('id_hash', '=', idHash).execute();
  return idHash;
}

function post(app: FastifyInstance, client: { id: string; secret: string }, params: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.id, client.secret) },
    payload: new URLSearchParams(params).toString(),
  });
}

/** Redeems a fresh code and returns the refresh token of the chain it starts. */
async function chain(app: FastifyInstance, client: { id: string; secret: string }): Promise<string> {
  const c = await code(app.database.db, client.id, new Date(Date.now() + 60_000));
  const res = await post(app, client, {
    grant_type: 'authorization_code',
    code: c.code,
    code_verifier: c.verifier,
    redirect_uri: REDIRECT,
  });
  if (res.statusCode !== 200) throw new Error(res.body);
  return res.json().refresh_token;
}

async function exists(
  db: Kysely<Database>,
  table: 'authorization_requests' | 'authorization_codes' | 'refresh_tokens' | 'sessions' | 'grant_revocations',
  column: string,
  value: string,
): Promise<boolean> {
  const row = await (db as SchemalessDb)
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where(column, '=', value)
    .executeTakeFirstOrThrow();
  return Number(row.n) > 0;
}

t.test('a sweep deletes what can no longer be used, after the retention period, and nothing live', async (t) => {
  // Without the retry grace window, so that presenting the rotated token below is reuse at once.
  const app = await buildTestApp(t, { ...ENV, REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const db = app.database.db;
  const client = await webClient(app);

  const oldRequest = await request(db, client.id, ago(2 * HOUR));
  const recentRequest = await request(db, client.id, ago(10 * 60_000));
  const liveRequest = await request(db, client.id, new Date(Date.now() + 600_000));

  const oldCode = await code(db, client.id, ago(2 * HOUR));
  const recentCode = await code(db, client.id, ago(10 * 60_000));
  const liveCode = await code(db, client.id, new Date(Date.now() + 60_000));

  const live = await chain(app, client);
  const rotatedFrom = await chain(app, client);
  const rotated = await post(app, client, { grant_type: 'refresh_token', refresh_token: rotatedFrom });
  t.equal(rotated.statusCode, 200, 'a rotated chain: its old generation must stay for reuse detection');
  const revoked = await chain(app, client);
  await db
    .updateTable('refresh_tokens')
    .set({ revoked_at: ago(2 * HOUR) })
    .where('token_hash', '=', hashSecret(revoked))
    .execute();
  const recentlyRevoked = await chain(app, client);
  await db
    .updateTable('refresh_tokens')
    .set({ revoked_at: ago(10 * 60_000) })
    .where('token_hash', '=', hashSecret(recentlyRevoked))
    .execute();
  const expired = await chain(app, client);
  await db
    .updateTable('refresh_tokens')
    .set({ expires_at: ago(2 * HOUR) })
    .where('token_hash', '=', hashSecret(expired))
    .execute();

  const oldSession = await session(db, { expires: ago(2 * HOUR) });
  const revokedSession = await session(db, { expires: new Date(Date.now() + HOUR), revoked: ago(2 * HOUR) });
  const idleSession = await session(db, { expires: new Date(Date.now() + 10 * HOUR), lastSeen: ago(4 * HOUR) });
  const liveSession = await session(db, { expires: new Date(Date.now() + HOUR), lastSeen: ago(60_000) });

  // Grant revocations matter while an access token issued before them can be unexpired (lifetime 3630 s).
  const oldRevocation = `gone-${randomBytes(4).toString('hex')}`;
  const recentRevocation = `kept-${randomBytes(4).toString('hex')}`;
  await db
    .insertInto('grant_revocations')
    .values({ sub: oldRevocation, client_id: null, revoked_at: ago(3 * HOUR) })
    .execute();
  await db
    .insertInto('grant_revocations')
    .values({ sub: recentRevocation, client_id: client.id, revoked_at: ago(90 * 60_000) })
    .execute();

  const result = await sweepOnce(app.database, app.config.database.schema, {
    retentionSeconds: 3600,
    sessionIdleSeconds: 2 * 3600,
    accessTokenLifetimeSeconds: 3630,
  });
  t.ok(result, 'nobody else holds the lock');
  t.ok(
    result!.authorization_requests >= 1 &&
      result!.authorization_codes >= 1 &&
      result!.refresh_tokens >= 2 &&
      result!.sessions >= 3,
    JSON.stringify(result),
  );

  t.notOk(
    await exists(db, 'authorization_requests', 'id', oldRequest),
    'a request expired beyond retention is deleted',
  );
  t.ok(
    await exists(db, 'authorization_requests', 'id', recentRequest),
    'a recently expired request is kept for the retention period',
  );
  t.ok(await exists(db, 'authorization_requests', 'id', liveRequest), 'a live request is kept');
  t.notOk(await exists(db, 'authorization_codes', 'code_hash', hashSecret(oldCode.code)));
  t.ok(await exists(db, 'authorization_codes', 'code_hash', hashSecret(recentCode.code)));
  t.ok(await exists(db, 'authorization_codes', 'code_hash', hashSecret(liveCode.code)));
  t.notOk(
    await exists(db, 'refresh_tokens', 'token_hash', hashSecret(revoked)),
    'a chain revoked beyond retention is deleted',
  );
  t.notOk(
    await exists(db, 'refresh_tokens', 'token_hash', hashSecret(expired)),
    'a chain expired beyond retention is deleted',
  );
  t.ok(await exists(db, 'refresh_tokens', 'token_hash', hashSecret(recentlyRevoked)));
  t.ok(
    await exists(db, 'refresh_tokens', 'token_hash', hashSecret(rotatedFrom)),
    'a rotated generation of a live chain is kept',
  );
  t.notOk(await exists(db, 'sessions', 'id_hash', oldSession));
  t.notOk(await exists(db, 'sessions', 'id_hash', revokedSession));
  t.notOk(
    await exists(db, 'sessions', 'id_hash', idleSession),
    'a session idle beyond its idle lifetime and retention is deleted',
  );
  t.ok(await exists(db, 'sessions', 'id_hash', liveSession));
  t.notOk(
    await exists(db, 'grant_revocations', 'sub', oldRevocation),
    'a revocation older than any token it could concern is deleted',
  );
  t.ok(
    await exists(db, 'grant_revocations', 'sub', recentRevocation),
    'a revocation an unexpired token may predate is kept',
  );

  // What survives still works as before the sweep.
  const redeemed = await post(app, client, {
    grant_type: 'authorization_code',
    code: liveCode.code,
    code_verifier: liveCode.verifier,
    redirect_uri: REDIRECT,
  });
  t.equal(redeemed.statusCode, 200, 'a live code still redeems');
  const refreshed = await post(app, client, { grant_type: 'refresh_token', refresh_token: live });
  t.equal(refreshed.statusCode, 200, 'a live chain still refreshes');
  const reuse = await post(app, client, { grant_type: 'refresh_token', refresh_token: rotatedFrom });
  t.equal(reuse.json().error, 'invalid_grant', 'reuse of a rotated token is still detected…');
  const afterReuse = await post(app, client, {
    grant_type: 'refresh_token',
    refresh_token: rotated.json().refresh_token,
  });
  t.equal(afterReuse.json().error, 'invalid_grant', '…and still revokes its chain');
  const gone = await post(app, client, { grant_type: 'refresh_token', refresh_token: revoked });
  t.equal(gone.json().error, 'invalid_grant', 'a deleted chain is refused like a revoked one');
});

t.test('a backlog larger than one batch is deleted in batches', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const hashes: string[] = [];
  for (let i = 0; i < 7; i++) hashes.push(await session(db, { expires: ago(2 * HOUR) }));
  const result = await sweepExpired(db, {
    retentionSeconds: 0,
    sessionIdleSeconds: 86400,
    accessTokenLifetimeSeconds: 3630,
    batch: 3,
  });
  t.ok(result.sessions >= 7, `all seven went (${result.sessions})`);
  for (const h of hashes) t.notOk(await exists(db, 'sessions', 'id_hash', h));
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('JANITOR_DUTY_PERCENT: the sweep rests between statements, so they hold that share of its time', async (t) => {
  // At 25% a statement of 40 ms is followed by 120 ms of rest before the next (lower bounds: a busy machine
  // only adds), and none after the last.
  const quarter = new Pacer(25, undefined);
  let started = performance.now();
  t.equal(await quarter.step(() => pause(40).then(() => 'result')), 'result', "the statement's result");
  const first = performance.now() - started;
  t.ok(first >= 40 - 5, `the first statement ran at once (${Math.round(first)} ms)`);
  started = performance.now();
  await quarter.step(async () => undefined);
  t.ok(
    performance.now() - started >= 120 - 5,
    `rested before the second (${Math.round(performance.now() - started)} ms)`,
  );

  // Stopped while resting (a server shutting down): it does not wait out the rest, and runs nothing more.
  const stop = new AbortController();
  const slow = new Pacer(1, stop.signal);
  await slow.step(() => pause(100));
  started = performance.now();
  const stepping = slow.step(async () => t.fail('no statement runs once stopped'));
  setTimeout(() => stop.abort(), 300);
  await t.rejects(stepping, SweepStopped, 'a rest of 9.9 s is cut short');
  t.ok(performance.now() - started < 9000, `stopped after ${Math.round(performance.now() - started)} ms`);
  await t.rejects(
    slow.step(async () => t.fail('no statement runs once stopped')),
    SweepStopped,
  );

  t.throws(() => new Pacer(0, undefined), RangeError, 'a duty of 0 would never sweep');
  t.throws(() => new Pacer(101, undefined), RangeError);
});

t.test('a sweep stopped before it starts deletes nothing', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const expired = await session(db, { expires: ago(2 * HOUR) });
  await t.rejects(
    sweepExpired(db, {
      retentionSeconds: 0,
      sessionIdleSeconds: 86400,
      accessTokenLifetimeSeconds: 3630,
      signal: AbortSignal.abort(),
    }),
    SweepStopped,
  );
  t.ok(await exists(db, 'sessions', 'id_hash', expired));
});

t.test('closing the server stops a paced sweep between two statements instead of waiting it out', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  // At 1% each statement is followed by 99 times its duration of rest: the sweep below takes seconds.
  const app = await buildTestApp(
    t,
    {
      ...ENV,
      JANITOR_INTERVAL_SECONDS: '1',
      JANITOR_RETENTION_SECONDS: '0',
      JANITOR_DUTY_PERCENT: '1',
      LOG_LEVEL: 'info',
    },
    { logs },
  );
  // 12,000 expired authorization requests, the first table a sweep visits: three statements of 5,000
  // (JANITOR_BATCH), each followed by 99 times its duration of rest.
  const db = app.database.db;
  const client = await webClient(app);
  await db
    .insertInto('authorization_requests')
    .columns([
      'id',
      'client_id',
      'redirect_uri',
      'redirect_uri_given',
      'scopes',
      'resources',
      'code_challenge',
      'binding_hash',
      'expires_at',
    ])
    .expression(
      sql`select 'paced-' || n, ${client.id}, ${REDIRECT}, true, array['read'], array['https://api.example.com'],
          md5(n::text), md5('b' || n), now() - interval '1 hour'
        from generate_series(1, 12000) as n`,
    )
    .execute();
  const left = async () =>
    Number(
      (
        await db
          .selectFrom('authorization_requests')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('id', 'like', 'paced-%')
          .executeTakeFirstOrThrow()
      ).n,
    );
  // A sweep that began before the rows were in misses them; the next one (a second later) starts with them.
  const deadline = Date.now() + 60_000;
  while ((await left()) === 12_000 && Date.now() < deadline) await pause(10);
  t.equal(await left(), 7000, 'a sweep deleted its first batch and is resting');
  const started = performance.now();
  await app.close();
  t.ok(
    logs.some((l) => l.msg === 'janitor: sweep stopped for shutdown; the next start goes on'),
    `the sweep was stopped (close took ${Math.round(performance.now() - started)} ms)`,
  );
  t.equal(await left(), 7000, 'between two statements: the rest of the backlog waits for the next start');
  t.notOk(
    logs.some((l) => l.msg === 'janitor sweep failed'),
    'nothing failed',
  );
});

t.test(
  'only one replica sweeps at a time: a sweep that finds the lock taken skips its round',
  {
    skip: TEST_DATABASE_URL
      ? false
      : 'PGlite has one session, and advisory locks are re-entrant within a session: needs TEST_DATABASE_URL',
  },
  async (t) => {
    const database = await testDatabase();
    const config = testConfig(ENV);
    const other = await openDatabase(config);
    t.teardown(() => other.close());
    const expired = await session(database.db, { expires: ago(2 * HOUR) });
    const key = `gatehouse.janitor.${config.database.schema}`;
    await other.root.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(hashtext(${key}))`.execute(conn);
      try {
        const skipped = await sweepOnce(database, config.database.schema, {
          retentionSeconds: 0,
          sessionIdleSeconds: 86400,
          accessTokenLifetimeSeconds: 3630,
        });
        t.equal(skipped, null, 'the lock is held by another replica: skipped');
        t.ok(await exists(database.db, 'sessions', 'id_hash', expired), 'and nothing was deleted');
      } finally {
        await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
      }
    });
    const swept = await sweepOnce(database, config.database.schema, {
      retentionSeconds: 0,
      sessionIdleSeconds: 86400,
      accessTokenLifetimeSeconds: 3630,
    });
    t.ok(swept && swept.sessions >= 1, 'once released, the next round sweeps');
    t.notOk(await exists(database.db, 'sessions', 'id_hash', expired));
  },
);

t.test('the server sweeps by itself every JANITOR_INTERVAL_SECONDS, and closes cleanly', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  const app = await buildTestApp(
    t,
    { ...ENV, JANITOR_INTERVAL_SECONDS: '1', JANITOR_RETENTION_SECONDS: '0', LOG_LEVEL: 'info' },
    { logs },
  );
  const expired = await session(app.database.db, { expires: ago(60_000) });
  const deadline = Date.now() + 15_000;
  while ((await exists(app.database.db, 'sessions', 'id_hash', expired)) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  t.notOk(
    await exists(app.database.db, 'sessions', 'id_hash', expired),
    'the expired session was swept without anyone asking',
  );
  // The sweep goes on to the tables after sessions (resting between statements) before it logs.
  while (!logs.some((l) => l.msg === 'janitor swept expired rows') && Date.now() < deadline) await pause(50);
  const line = logs.find((l) => l.msg === 'janitor swept expired rows');
  t.ok(line, 'the sweep is logged');
  t.match(
    line,
    { deleted: { sessions: Number, codes: Number, refresh: Number, requests: Number, revocations: Number } },
    'with what it deleted (counts only)',
  );
});

t.test('JANITOR_INTERVAL_SECONDS=0 turns the periodic sweep off', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  const app = await buildTestApp(
    t,
    { ...ENV, JANITOR_INTERVAL_SECONDS: '0', JANITOR_RETENTION_SECONDS: '0', LOG_LEVEL: 'debug' },
    { logs },
  );
  const expired = await session(app.database.db, { expires: ago(60_000) });
  await new Promise((r) => setTimeout(r, 1500));
  t.ok(await exists(app.database.db, 'sessions', 'id_hash', expired), 'nothing swept');
  t.notOk(
    logs.some((l) => String(l.msg).startsWith('janitor')),
    'no janitor activity',
  );
});

t.test('gatehouse janitor sweeps once from the command line', async (t) => {
  const env = TEST_DATABASE_URL ? testEnv(ENV) : { ...testEnv(ENV), DATA_DIR: join(t.testdir(), 'pglite') };
  const config = testConfig(env);
  t.equal((await run([CLI, 'migrate', 'up'], env)).code, 0);
  const handle = await openDatabase(config);
  const expired = await session(handle.db, { expires: ago(2 * HOUR) });
  const live = await session(handle.db, { expires: new Date(Date.now() + HOUR) });
  await handle.close();

  const res = await run([CLI, 'janitor', '--json'], env);
  t.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  t.ok(out.deleted.sessions >= 1, res.stdout);
  t.type(out.deleted.refresh_tokens, 'number');

  const after = await openDatabase(config);
  t.teardown(() => after.close());
  t.notOk(await exists(after.db, 'sessions', 'id_hash', expired));
  t.ok(await exists(after.db, 'sessions', 'id_hash', live));

  const usage = await run([CLI, 'janitor', 'now'], env);
  t.equal(usage.code, 2, 'stray arguments are a usage error');
  t.match(usage.stderr, /janitor takes no arguments/);
});

t.test(
  'a chain is deleted whole: a revocation that missed its newest generation cannot be undone by a sweep',
  async (t) => {
    const app = await buildTestApp(t, ENV);
    const db = app.database.db;
    const client = await webClient(app);
    const first = await chain(app, client);
    const rotated = await post(app, client, { grant_type: 'refresh_token', refresh_token: first });
    const newest = rotated.json().refresh_token;
    // What a revocation racing a rotation can leave: the old generation revoked, the newest not.
    await db
      .updateTable('refresh_tokens')
      .set({ revoked_at: ago(2 * HOUR) })
      .where('token_hash', '=', hashSecret(first))
      .execute();
    t.equal(
      (await post(app, client, { grant_type: 'refresh_token', refresh_token: newest })).json().error,
      'invalid_grant',
      'the chain is dead before the sweep',
    );
    await sweepExpired(db, { retentionSeconds: 3600, sessionIdleSeconds: 86400, accessTokenLifetimeSeconds: 3630 });
    t.notOk(await exists(db, 'refresh_tokens', 'token_hash', hashSecret(first)));
    t.notOk(
      await exists(db, 'refresh_tokens', 'token_hash', hashSecret(newest)),
      'the unrevoked generation went with its chain',
    );
    t.equal(
      (await post(app, client, { grant_type: 'refresh_token', refresh_token: newest })).json().error,
      'invalid_grant',
      'and the chain is still dead after it',
    );
  },
);

t.test('a redeemed code is kept until it expires, so a replay within its lifetime revokes the chain', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const client = await webClient(app);
  const c = await code(db, client.id, new Date(Date.now() + 60_000));
  const redeemed = await post(app, client, {
    grant_type: 'authorization_code',
    code: c.code,
    code_verifier: c.verifier,
    redirect_uri: REDIRECT,
  });
  const refreshToken = redeemed.json().refresh_token;
  const orphan = await code(db, client.id, ago(5 * HOUR));
  // A sweep while the code is unexpired (RFC 9700 §4.5: a replay then must still revoke what it started).
  await sweepExpired(db, { retentionSeconds: 0, sessionIdleSeconds: 86400, accessTokenLifetimeSeconds: 3630 });
  t.ok(
    await exists(db, 'authorization_codes', 'code_hash', hashSecret(c.code)),
    'the redeemed code stays until its expiry',
  );
  t.notOk(
    await exists(db, 'authorization_codes', 'code_hash', hashSecret(orphan.code)),
    'an expired code that started nothing goes',
  );
  const replay = await post(app, client, {
    grant_type: 'authorization_code',
    code: c.code,
    code_verifier: c.verifier,
    redirect_uri: REDIRECT,
  });
  t.equal(replay.json().error, 'invalid_grant');
  t.equal(
    (await post(app, client, { grant_type: 'refresh_token', refresh_token: refreshToken })).json().error,
    'invalid_grant',
    'the replay after the sweep revoked the chain',
  );
});

t.test('a redeemed code goes at its expiry (plus retention) while its chain lives on', async (t) => {
  const app = await buildTestApp(t, ENV);
  const db = app.database.db;
  const client = await webClient(app);
  const c = await code(db, client.id, new Date(Date.now() + 60_000));
  const redeemed = await post(app, client, {
    grant_type: 'authorization_code',
    code: c.code,
    code_verifier: c.verifier,
    redirect_uri: REDIRECT,
  });
  const refreshToken = redeemed.json().refresh_token;
  await db
    .updateTable('authorization_codes')
    .set({ expires_at: ago(2 * HOUR) })
    .where('code_hash', '=', hashSecret(c.code))
    .execute();
  await sweepExpired(db, { retentionSeconds: 3600, sessionIdleSeconds: 86400, accessTokenLifetimeSeconds: 3630 });
  t.notOk(await exists(db, 'authorization_codes', 'code_hash', hashSecret(c.code)), 'the expired code is gone');
  const replay = await post(app, client, {
    grant_type: 'authorization_code',
    code: c.code,
    code_verifier: c.verifier,
    redirect_uri: REDIRECT,
  });
  t.equal(replay.json().error, 'invalid_grant', 'presenting it is refused (an expired code would be anyway)');
  const refreshed = await post(app, client, { grant_type: 'refresh_token', refresh_token: refreshToken });
  t.equal(refreshed.statusCode, 200, 'the chain it started is untouched');
});
