// npm run bench:growth: what Gatehouse costs as its tables grow (issue 14, "cost as data grows").
//   1. rotation (refresh_token) and redemption (authorization_code) rates on empty tables;
//   2. the same after seeding BENCH_SEED_ROWS refresh-token rows and as many codes (half expired, half live;
//      three of every four refresh rows rotated generations), written by INSERT … SELECT generate_series;
//   3. a backlog sweep (`gatehouse janitor`) of what step 2 made deletable, timed, while refresh load runs:
//      the rotation rate during the sweep against step 2's; once per JANITOR_DUTY_PERCENT in
//      BENCH_SWEEP_DUTIES (100,25: unpaced, then the default pacing), reseeding before each after the first;
//   4. a steady refresh load for BENCH_STEADY_SECONDS with the janitor sweeping every BENCH_JANITOR_INTERVAL
//      seconds: refresh-token rows before and after, against live chains and refreshes made.
// Gatehouse runs on a throwaway Postgres (scripts/pg-throwaway.sh) or BENCH_DATABASE_URL, listens on
// 127.0.0.1 only, and stops by itself. Results: bench/results/growth.{json,md}.
//
// Environment: BENCH_SEED_ROWS (1000000), BENCH_CONNECTIONS (50), BENCH_DURATION seconds per measured run
// (10), BENCH_STEADY_SECONDS (60: several paced passes over the seeded table; its size is sampled six times), BENCH_JANITOR_INTERVAL seconds (1), BENCH_STEADY_GRACE
// (REFRESH_TOKEN_GRACE_SECONDS during step 4; 0 by default, so the table's floor is visible within a short run;
// with the window on, rotated generations stay for the keep window the janitor derives: docs/operations.md),
// BENCH_LOG_LEVEL (info, the default level), BENCH_DATABASE_URL.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { hashSecret } from '../src/oauth/secrets.js';
import { newRefreshChain } from '../src/oauth/tokens/refresh-chain.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(root, 'dist/src/cli/main.js');
const SEED_ROWS = Number(process.env.BENCH_SEED_ROWS ?? 1_000_000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const STEADY = Number(process.env.BENCH_STEADY_SECONDS ?? 60);
const JANITOR_INTERVAL = Number(process.env.BENCH_JANITOR_INTERVAL ?? 1);
const STEADY_GRACE = process.env.BENCH_STEADY_GRACE ?? '0';
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'info';
/** JANITOR_DUTY_PERCENT of each backlog sweep, in order. */
const SWEEP_DUTIES = (process.env.BENCH_SWEEP_DUTIES ?? '100,25').split(',').map(Number);
const WARMUP = 2;
const ISSUER = 'http://127.0.0.1:4000';
const AUDIENCE = 'https://api.bench.example';
const REDIRECT_URI = 'https://app.bench.example/callback';
const SCOPES = ['read', 'write'];

const b64url = (n: number) => randomBytes(n).toString('base64url');
const s256 = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url');

interface Run {
  perSec: number;
  p99: number;
  errors: number;
}

/** Bodies handed out once each (codes), or chains whose answers feed the next request (refresh). */
interface Feed {
  next(): string | null;
  ok?(body: string): void;
}

function codeFeed(bodies: string[]): Feed {
  let i = 0;
  return { next: () => (i < bodies.length ? bodies[i++]! : null) };
}

function chainFeed(tokens: string[]): Feed {
  const live = [...tokens];
  let head = 0;
  return {
    next: () => (head < live.length ? `grant_type=refresh_token&refresh_token=${live[head++]!}` : null),
    ok: (body) => {
      const next = (JSON.parse(body) as { refresh_token?: string }).refresh_token;
      if (next) live.push(next);
      if (head > 4096) {
        live.splice(0, head);
        head = 0;
      }
    },
  };
}

/** Refresh requests on `port`, each with the feed's next token, for `seconds` at most. */
function refreshLoad(port: number, headers: Record<string, string>, feed: Feed, seconds: number): autocannon.Options {
  return {
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/token',
        headers,
        setupRequest: (req) => ({ ...req, body: feed.next() ?? 'grant_type=refresh_token&refresh_token=exhausted' }),
        onResponse: (status, body) => {
          if (status >= 200 && status < 300) feed.ok?.(body);
        },
      },
    ],
  };
}

async function drive(port: number, headers: Record<string, string>, feed: Feed, seconds: number): Promise<Run> {
  const result = await autocannon(refreshLoad(port, headers, feed, seconds));
  return { perSec: result['2xx'] / seconds, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

/** Refresh load from now until `done` settles: the rate over exactly that time. */
async function driveUntil(
  port: number,
  headers: Record<string, string>,
  feed: Feed,
  done: Promise<unknown>,
): Promise<Run & { seconds: number }> {
  let instance!: autocannon.Instance;
  // The duration is an upper bound only: the load stops when `done` settles.
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(refreshLoad(port, headers, feed, 3600), (err: Error | null, result) =>
      err ? reject(err) : resolve(result),
    );
  });
  await done.catch(() => undefined);
  instance.stop();
  const result = await finished;
  return {
    perSec: result['2xx'] / result.duration,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    seconds: result.duration,
  };
}

/** Writes rows straight into Gatehouse's tables, as it would have stored them. */
class Seeder {
  readonly pool: pg.Pool;
  constructor(
    url: string,
    private readonly schema: string,
    private readonly clientId: string,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
  }

  private table(name: string): string {
    return `"${this.schema}".${name}`;
  }

  /** n unused codes valid for an hour; returns their token-request bodies. */
  async codes(n: number): Promise<string[]> {
    const bodies: string[] = [];
    const hashes: string[] = [];
    const challenges: string[] = [];
    const redirect = encodeURIComponent(REDIRECT_URI);
    for (let i = 0; i < n; i++) {
      const code = b64url(32);
      const verifier = b64url(32);
      hashes.push(hashSecret(code));
      challenges.push(s256(verifier));
      bodies.push(`grant_type=authorization_code&code=${code}&code_verifier=${verifier}&redirect_uri=${redirect}`);
    }
    await this.pool.query(
      `INSERT INTO ${this.table('authorization_codes')}
         (code_hash, client_id, redirect_uri, redirect_uri_given, code_challenge, scopes, resources, sub, auth_time, expires_at)
       SELECT h, $3, $4, true, c, $5::text[], $6::text[], 'user-' || (i % 1000), now(), now() + interval '1 hour'
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(h, c, i)`,
      [hashes, challenges, this.clientId, REDIRECT_URI, SCOPES, [AUDIENCE]],
    );
    return bodies;
  }

  /** n new chains (generation 0), started the way a redemption starts them; returns their tokens. */
  async chains(n: number): Promise<string[]> {
    const chains = Array.from({ length: n }, () => newRefreshChain());
    await this.pool.query(
      `INSERT INTO ${this.table('refresh_tokens')}
         (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at)
       SELECT h, f, 0, $3, 'user-' || i, $4::text[], $5::text[], now(), now() + interval '30 days'
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(h, f, i)`,
      [chains.map((c) => hashSecret(c.token)), chains.map((c) => c.familyId), this.clientId, SCOPES, [AUDIENCE]],
    );
    return chains.map((c) => c.token);
  }

  /**
   * `rows` refresh-token rows in chains of four generations (three rotated a day ago, the newest live),
   * the first half of the chains expired two days ago; and `rows` codes, the first half redeemed and expired
   * two days ago, the rest unused and live. One INSERT … SELECT generate_series per table, in slices.
   */
  /** `round` keeps a second seeding's rows apart from the first's (a backlog sweep leaves the live half). */
  async bulk(rows: number, round = ''): Promise<void> {
    const slice = 250_000;
    for (let from = 1; from <= rows; from += slice) {
      const to = Math.min(rows, from + slice - 1);
      await this.pool.query(
        `INSERT INTO ${this.table('refresh_tokens')}
           (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at, rotated_at)
         SELECT translate(encode(sha256(($7 || 'seed-r' || i)::text::bytea), 'base64'), '+/=', '-_'),
                'c.' || left(md5($7 || 'seed-f' || (i / 4)), 22), i % 4, $3, 'user-' || (i % 10000),
                $4::text[], $5::text[], now() - interval '3 days',
                CASE WHEN i <= $6 THEN now() - interval '2 days' ELSE now() + interval '20 days' END,
                CASE WHEN i % 4 < 3 THEN now() - interval '1 day' END
         FROM generate_series($1::int, $2::int) AS i`,
        [from, to, this.clientId, SCOPES, [AUDIENCE], Math.floor(rows / 2), round],
      );
      await this.pool.query(
        `INSERT INTO ${this.table('authorization_codes')}
           (code_hash, client_id, redirect_uri, redirect_uri_given, code_challenge, scopes, resources, sub, auth_time,
            expires_at, consumed_at, family_id)
         SELECT translate(encode(sha256(($8 || 'seed-c' || i)::text::bytea), 'base64'), '+/=', '-_'), $3, $4, true,
                translate(encode(sha256(($8 || 'seed-v' || i)::text::bytea), 'base64'), '+/=', '-_'),
                $5::text[], $6::text[], 'user-' || (i % 10000), now() - interval '3 days',
                CASE WHEN i <= $7 THEN now() - interval '2 days' ELSE now() + interval '1 hour' END,
                CASE WHEN i <= $7 THEN now() - interval '2 days' END,
                CASE WHEN i <= $7 THEN 'c.' || left(md5($8 || 'seed-f' || i), 22) END
         FROM generate_series($1::int, $2::int) AS i`,
        [from, to, this.clientId, REDIRECT_URI, SCOPES, [AUDIENCE], Math.floor(rows / 2), round],
      );
    }
    // Vacuumed as a long-lived table is: otherwise autovacuum, woken by a million inserted rows, runs during
    // the measurements that follow and moves them by a third from one run to the next.
    await this.pool.query(`VACUUM (ANALYZE) ${this.table('authorization_codes')}, ${this.table('refresh_tokens')}`);
  }

  async analyze(): Promise<void> {
    await this.pool.query(`ANALYZE ${this.table('authorization_codes')}, ${this.table('refresh_tokens')}`);
  }

  async count(table: 'refresh_tokens' | 'authorization_codes'): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.table(table)}`);
    return Number(rows[0]!.n);
  }

  /** Chains with a live (unrotated, unrevoked, unexpired) generation. */
  async liveChains(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${this.table('refresh_tokens')}
       WHERE rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()`,
    );
    return Number(rows[0]!.n);
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForReady(port: number): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('Gatehouse did not become ready');
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const timer = setTimeout(() => (child.kill('SIGKILL'), done()), 15_000);
    child.once('exit', () => (clearTimeout(timer), done()));
    child.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-growth-'));
  let pgDir: string | null = null;
  let seeder: Seeder | null = null;
  const children: ChildProcess[] = [];
  try {
    let databaseUrl = process.env.BENCH_DATABASE_URL;
    if (!databaseUrl) {
      pgDir = join(work, 'pg');
      execFileSync('chmod', ['755', work]);
      databaseUrl = execFileSync(join(root, 'scripts/pg-throwaway.sh'), ['start', pgDir], { encoding: 'utf8' }).trim();
    }
    const schema = `growth_${randomBytes(4).toString('hex')}`;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      ISSUER,
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: databaseUrl,
      DATABASE_SCHEMA: schema,
      KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
      RESOURCES: AUDIENCE,
      SCOPES: SCOPES.join(' '),
      LOG_LEVEL,
      // Steps 1–3 control when the janitor runs; step 4 starts a server with it on.
      JANITOR_INTERVAL_SECONDS: '0',
    };
    execFileSync(process.execPath, [CLI, 'migrate', 'up'], { env, stdio: 'ignore' });
    const created = JSON.parse(
      execFileSync(
        process.execPath,
        [
          CLI,
          'clients',
          'create',
          '--json',
          '--auth-method',
          'client_secret_basic',
          '--name',
          'growth-app',
          '--grant-type',
          'authorization_code',
          '--grant-type',
          'refresh_token',
          '--redirect-uri',
          REDIRECT_URI,
        ],
        { env, encoding: 'utf8' },
      ),
    ) as { client: { client_id: string }; client_secret: string };
    const clientId = created.client.client_id;
    const headers = {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    };
    seeder = new Seeder(databaseUrl, schema, clientId);
    const db = seeder;

    const start = async (extra: Record<string, string>): Promise<{ child: ChildProcess; port: number }> => {
      const port = await freePort();
      const child = spawn(process.execPath, [CLI, 'serve'], {
        env: { ...env, ...extra, PORT: String(port) },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      await waitForReady(port);
      return { child, port };
    };
    const log = (line: string) => process.stderr.write(`${line}\n`);

    /** One measured rotation run and one redemption run (each after a warm-up), as the table stands. */
    const measure = async (port: number): Promise<{ refresh: Run; code: Run }> => {
      await drive(port, headers, chainFeed(await db.chains(CONNECTIONS)), WARMUP);
      const refresh = await drive(port, headers, chainFeed(await db.chains(CONNECTIONS)), DURATION);
      const warm = await drive(port, headers, codeFeed(await db.codes(5000 * WARMUP)), WARMUP);
      const pace = Math.max(warm.perSec, 1500) * 3;
      await db.analyze();
      const code = await drive(port, headers, codeFeed(await db.codes(Math.ceil(pace * DURATION))), DURATION);
      return { refresh, code };
    };

    const main = await start({});
    // One unrecorded round first: JIT, caches and pools warm, so the empty-table figures are not the coldest.
    await measure(main.port);
    const empty = await measure(main.port);
    log(`empty: refresh ${empty.refresh.perSec.toFixed(0)}/s, code ${empty.code.perSec.toFixed(0)}/s`);

    let t0 = performance.now();
    await db.bulk(SEED_ROWS);
    const seedSeconds = (performance.now() - t0) / 1000;
    const seededCounts = { refresh: await db.count('refresh_tokens'), codes: await db.count('authorization_codes') };
    log(`seeded ${SEED_ROWS} + ${SEED_ROWS} rows in ${seedSeconds.toFixed(1)} s`);
    const seeded = await measure(main.port);
    log(`seeded: refresh ${seeded.refresh.perSec.toFixed(0)}/s, code ${seeded.code.perSec.toFixed(0)}/s`);

    // The backlog: a sweep from the command line while refresh load runs beside it, once per duty cycle
    // (JANITOR_DUTY_PERCENT), each on a fresh seeding; the load runs exactly as long as the sweep.
    const sweeps: Array<{ duty: number; seconds: number; deleted: Record<string, number>; during: Run }> = [];
    let afterSweep = { refresh: 0, codes: 0 };
    for (const [round, duty] of SWEEP_DUTIES.entries()) {
      if (round > 0) {
        await db.bulk(SEED_ROWS, `r${round}-`);
        log(`seeded again for the sweep at ${duty}%`);
      }
      const chains = chainFeed(await db.chains(CONNECTIONS));
      let finished!: (value: unknown) => void;
      const sweepDone = new Promise((r) => (finished = r));
      const load = driveUntil(main.port, headers, chains, sweepDone);
      await new Promise((r) => setTimeout(r, 1000));
      t0 = performance.now();
      const swept = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [CLI, 'janitor', '--json'],
          { env: { ...env, JANITOR_DUTY_PERCENT: String(duty) } },
          (err, stdout) => (err ? reject(new Error(`gatehouse janitor: ${err.message}`)) : resolve(stdout)),
        ),
      ).finally(() => finished(undefined));
      const seconds = (performance.now() - t0) / 1000;
      const during = await load;
      const deleted = (JSON.parse(swept) as { deleted: Record<string, number> }).deleted;
      sweeps.push({ duty, seconds, deleted, during });
      afterSweep = { refresh: await db.count('refresh_tokens'), codes: await db.count('authorization_codes') };
      log(
        `sweep at ${duty}%: ${seconds.toFixed(1)} s, ${JSON.stringify(deleted)}; refresh during ${during.perSec.toFixed(0)}/s`,
      );
    }
    await stopChild(main.child);

    // Steady load with the janitor on: the table should stay at the live chains, not grow with refreshes.
    const steady = await start({
      JANITOR_INTERVAL_SECONDS: String(JANITOR_INTERVAL),
      REFRESH_TOKEN_GRACE_SECONDS: STEADY_GRACE,
    });
    await db.analyze();
    const before = { rows: await db.count('refresh_tokens'), live: await db.liveChains() };
    // The table's size every sixth of the run: bounded means it levels off while refreshes keep coming.
    const samples: Array<{ second: number; rows: number }> = [];
    const sampling = (async () => {
      for (let i = 1; i <= 6; i++) {
        await new Promise((r) => setTimeout(r, (STEADY * 1000) / 6));
        samples.push({ second: Math.round((STEADY * i) / 6), rows: await db.count('refresh_tokens') });
      }
    })();
    const run = await drive(steady.port, headers, chainFeed(await db.chains(CONNECTIONS)), STEADY);
    await sampling;
    // One more interval, so the last rotations have been swept when the table is counted.
    await new Promise((r) => setTimeout(r, (JANITOR_INTERVAL * 1.1 + 1) * 1000));
    const after = { rows: await db.count('refresh_tokens'), live: await db.liveChains() };
    const refreshesMade = Math.round(run.perSec * STEADY);
    log(`steady: ${before.rows} rows before, ${after.rows} after, ${refreshesMade} refreshes made`);
    await stopChild(steady.child);

    const ratio = (a: Run, b: Run) => (a.perSec / b.perSec).toFixed(2);
    const md = `# Growth benchmark

${new Date().toISOString()} · Node ${process.version} · ${CONNECTIONS} connections · ${DURATION} s runs (after ${WARMUP} s warm-up) · Postgres · LOG_LEVEL=${LOG_LEVEL}

| workload | empty tables /s | seeded /s | seeded ÷ empty | p99 ms empty / seeded | errors empty / seeded |
|---|---:|---:|---:|---:|---:|
| refresh_token rotation | ${empty.refresh.perSec.toFixed(0)} | ${seeded.refresh.perSec.toFixed(0)} | **${ratio(seeded.refresh, empty.refresh)}** | ${empty.refresh.p99} / ${seeded.refresh.p99} | ${empty.refresh.errors} / ${seeded.refresh.errors} |
| authorization_code redemption | ${empty.code.perSec.toFixed(0)} | ${seeded.code.perSec.toFixed(0)} | **${ratio(seeded.code, empty.code)}** | ${empty.code.p99} / ${seeded.code.p99} | ${empty.code.errors} / ${seeded.code.errors} |

Seeded: ${SEED_ROWS.toLocaleString('en')} refresh-token rows (chains of four generations, three rotated a day ago; half the chains expired) and ${SEED_ROWS.toLocaleString('en')} codes (half redeemed and expired, half live), in ${seedSeconds.toFixed(1)} s (INSERT … SELECT generate_series); tables then held ${seededCounts.refresh.toLocaleString('en')} refresh rows and ${seededCounts.codes.toLocaleString('en')} codes.

Backlog sweeps (\`gatehouse janitor\` beside refresh load that runs exactly as long as the sweep, each on a fresh seeding of the same size; the rate against the seeded rate above):

| JANITOR_DUTY_PERCENT | sweep | deleted | refresh during the sweep | ÷ seeded | p99 ms | errors |
|---:|---:|---|---:|---:|---:|---:|
${sweeps
  .map(
    (w) =>
      `| ${w.duty}${w.duty === 25 ? ' (default)' : ''} | **${w.seconds.toFixed(1)} s** | ${Object.entries(w.deleted)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${n.toLocaleString('en')} ${k}`)
        .join(
          ', ',
        )} | ${w.during.perSec.toFixed(0)}/s | **${ratio(w.during, seeded.refresh)}** | ${w.during.p99} | ${w.during.errors} |`,
  )
  .join('\n')}

After the sweeps: ${afterSweep.refresh.toLocaleString('en')} refresh rows and ${afterSweep.codes.toLocaleString('en')} codes.

Steady refresh load, ${STEADY} s, janitor every ${JANITOR_INTERVAL} s, REFRESH_TOKEN_GRACE_SECONDS=${STEADY_GRACE}: ${refreshesMade.toLocaleString('en')} refreshes made at ${run.perSec.toFixed(0)}/s (${run.errors} errors); refresh-token rows **${before.rows.toLocaleString('en')} before, ${after.rows.toLocaleString('en')} after**, live chains ${before.live.toLocaleString('en')} before, ${after.live.toLocaleString('en')} after; rows during the run: ${samples.map((x) => `${x.rows.toLocaleString('en')} at ${x.second} s`).join(', ')}.
`;
    const out = join(root, 'bench/results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'growth.md'), md);
    writeFileSync(
      join(out, 'growth.json'),
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          seedRows: SEED_ROWS,
          seedSeconds,
          empty,
          seeded,
          sweeps,
          afterSweep,
          steady: { seconds: STEADY, grace: STEADY_GRACE, before, after, samples, refreshesMade, run },
        },
        null,
        2,
      )}\n`,
    );
    process.stdout.write(md);
  } finally {
    await seeder?.end().catch(() => {});
    await Promise.all(children.map(stopChild));
    if (pgDir) execFileSync(join(root, 'scripts/pg-throwaway.sh'), ['stop', pgDir], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`growth bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
