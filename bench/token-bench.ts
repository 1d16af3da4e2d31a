// npm run bench: Gatehouse (real Postgres, its documented default log level) beside the bare cost of the same
// work on this machine (bench/bare-server.ts) and beside node-oidc-provider 9 (bench/peer-server.ts, in-memory
// adapter), driven by autocannon at a fixed concurrency for a fixed time, in interleaved rounds (bare,
// Gatehouse, peer; again) with each one's median round reported.
//   client_credentials   the same request every time (also against a second Gatehouse at LOG_LEVEL=warn: the
//                        cost of the default request logging)
//   authorization_code   every request redeems its own pre-seeded code (unique, hashed as Gatehouse hashes
//                        it, bound to a PKCE S256 challenge and a redirect URI), so none is used twice; the
//                        peer's codes are minted by its own models (Grant + AuthorizationCode) before the round
//   refresh_token        pre-seeded chains, one per connection: each response's new refresh token is the
//                        next request's, so every chain rotates in sequence and never forks (the peer's
//                        chains start from redeemed codes)
//   introspection_access, introspection_refresh
//                        POST /introspect (the peer: /token/introspection) by the token's own client, of one
//                        user's access token (the peer: an opaque one; it refuses to introspect its JWTs)
//                        and of one live refresh token; an `active: false` answer counts as an error
//   introspection_access_distinct
//                        the same, of a different access token each request: BENCH_DISTINCT_TOKENS (8192, twice
//                        what a Gatehouse verifier remembers) tokens in turn, so Gatehouse verifies every signature
//   authorization_code_openid, client_credentials+dpop, refresh_token+dpop
//                        Gatehouse and bare only: an ID token too; a fresh DPoP proof (RFC 9449) on every
//                        request, pre-signed by one ES256 client key; the refresh chains bound to that key
// Codes and chains are seeded straight into the database (getting a code over HTTP needs the browser
// sign-in handshake). Postgres is a throwaway one with its default durability (fsync, synchronous_commit,
// full_page_writes on). Listens on 127.0.0.1 only and stops by itself. Results: bench/results/token.{json,md}
// (ignored); `npm run bench -- --readme` (or BENCH_README=1) also rewrites the results table in bench/README.md.
// Needs Node 22+ (the peer does): run with a newer node, or set BENCH_NODE=/path/to/node.
//
// Environment: BENCH_CONNECTIONS (50), BENCH_DURATION seconds (10), BENCH_ROUNDS (3), BENCH_GRANTS (all,
// comma-separated), BENCH_LOG_LEVEL (Gatehouse's LOG_LEVEL; default: unset, i.e. info),
// BENCH_REFRESH_CHAINS (default: one per connection), BENCH_DATABASE_URL (default: a throwaway Postgres from
// scripts/pg-throwaway.sh), BENCH_CPU_PROF=DIR (run Gatehouse under node --cpu-prof, profiles written to DIR; the bare endpoint's to DIR/bare),
// BENCH_BARE_PREPARED=0 (the bare endpoint sends unnamed statements instead of prepared ones),
// BENCH_BARE_BATCH=0 (for comparison: the bare endpoint sends one statement per code or rotation instead of
// batching concurrent ones as Gatehouse does; see bare-server.ts),
// BENCH_GATEHOUSE_ENV='NAME=value …' (Gatehouse settings to compare against the defaults; said in the output),
// BENCH_SERVER_CPUS=LIST (e.g. 1: every server under test runs on those CPUs, taskset -c, and the load generator
// on the others; said in the output).
import { type ChildProcess, type SpawnOptions, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  type CryptoKey,
  type JWK,
  SignJWT,
} from 'jose';
import pg from 'pg';
import { hashSecret } from '../src/oauth/secrets.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(root, 'dist/src/cli/main.js');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** CPUs the servers under test are held to (taskset -c), the load generator held to the rest; unset: no pinning. */
const SERVER_CPUS = process.env.BENCH_SERVER_CPUS?.trim() || null;

/** A CPU list as taskset reads it (`1`, `0,2`, `0-1`), each CPU checked against this machine's; throws otherwise. */
function cpuList(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`BENCH_SERVER_CPUS=${list}: expected CPU numbers and ranges (1 or 0,2 or 0-1)`);
    const [from, to] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (to < from) throw new Error(`BENCH_SERVER_CPUS=${list}: the range ${part.trim()} runs backwards`);
    for (let cpu = from; cpu <= to; cpu++) {
      if (cpu >= cpus().length) throw new Error(`BENCH_SERVER_CPUS=${list}: this machine has no CPU ${cpu}`);
      out.add(cpu);
    }
  }
  return out;
}

/** Spawns a server under test with this Node, held to SERVER_CPUS when set (taskset execs node: same pid). */
function spawnServer(args: string[], options: SpawnOptions): ChildProcess {
  return SERVER_CPUS
    ? spawn('taskset', ['-c', SERVER_CPUS, process.execPath, ...args], options)
    : spawn(process.execPath, args, options);
}

/** The CPUs a server list leaves for the load generator; throws if the list is bad or leaves none. */
function loadGeneratorCpus(list: string): number[] {
  const held = cpuList(list);
  const rest = cpus()
    .map((_, i) => i)
    .filter((i) => !held.has(i));
  if (rest.length === 0) throw new Error(`BENCH_SERVER_CPUS=${list} leaves no CPU for the load generator`);
  return rest;
}

/** Holds this process (autocannon, every thread) to the given CPUs. */
function pinLoadGenerator(rest: number[]): void {
  execFileSync('taskset', ['-a', '-cp', rest.join(','), String(process.pid)], { stdio: 'ignore' });
}
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = 2;
const ALG = 'ES256';
const ISSUER = 'http://127.0.0.1:4000';
const AUDIENCE = 'https://api.bench.example';
const REDIRECT_URI = 'https://app.bench.example/callback';
const SCOPES = ['read', 'write'];
// authorization_code_openid: the same code exchange for codes granted `openid`, so the answer also carries
// an ID token (one more signature; the bare endpoint signs one too).
const ALL_GRANTS = [
  'client_credentials',
  'authorization_code',
  'refresh_token',
  'introspection_access',
  'introspection_access_distinct',
  'introspection_refresh',
  'authorization_code_openid',
  'client_credentials+dpop',
  'refresh_token+dpop',
] as const;
type GrantName = (typeof ALL_GRANTS)[number];
/** The workloads node-oidc-provider is configured for. */
const PEER_GRANTS: ReadonlySet<GrantName> = new Set([
  'client_credentials',
  'authorization_code',
  'refresh_token',
  'introspection_access',
  'introspection_access_distinct',
  'introspection_refresh',
]);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || undefined;
const WRITE_README = process.argv.includes('--readme') || process.env.BENCH_README === '1';
/** The bare endpoint batches as Gatehouse does; without (a comparison) its figures never go into bench/README.md. */
const BARE_BATCH = process.env.BENCH_BARE_BATCH !== '0';
if (WRITE_README && !BARE_BATCH)
  throw new Error('BENCH_BARE_BATCH=0 is a comparison: its figures are not written to bench/README.md');
/** Codes seeded for each warm-up; the measured run gets enough for 3× the warm-up's pace. */
const WARMUP_CODES = Number(process.env.BENCH_WARMUP_CODES ?? 30_000);
/** Access tokens asked about in turn by introspection_access_distinct: twice what a verifier remembers. */
const DISTINCT_TOKENS = Math.max(Number(process.env.BENCH_DISTINCT_TOKENS ?? 8192), 1);
/** Refresh-token chains per run: by default one per connection, each rotated in turn. */
const CHAINS = Math.max(Number(process.env.BENCH_REFRESH_CHAINS ?? CONNECTIONS), CONNECTIONS);

function grantsToRun(): GrantName[] {
  const asked = (process.env.BENCH_GRANTS ?? ALL_GRANTS.join(','))
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  for (const g of asked) {
    if (!(ALL_GRANTS as readonly string[]).includes(g))
      throw new Error(`BENCH_GRANTS: unknown grant ${g} (known: ${ALL_GRANTS.join(', ')})`);
  }
  return ALL_GRANTS.filter((g) => asked.includes(g));
}

interface Figures {
  name: string;
  tokensPerSec: number;
  p50: number;
  p99: number;
  /** Non-2xx responses, socket errors and timeouts. */
  errors: number;
  requests: number;
  statusCodes: Record<string, number>;
  /** Up to three distinct non-2xx bodies, to say what went wrong. */
  errorSamples: string[];
  /** Requests sent with no seeded code or live chain left (each is also an error). */
  exhausted: number;
  /**
   * CPU time per token (µs) of the server process (all its threads), of its main thread alone (the event loop, what
   * limits a Node server's rate while another core has room), of the server's own Postgres backends, and of
   * Postgres in all during the measured run; null where /proc (or pg_stat_activity) cannot tell.
   */
  cpuUsPerToken: { server: number | null; loop: number | null; backends: number | null; postgres: number | null };
}

/**
 * CPU time used by a process, and by Postgres (its postmaster and every backend), read from /proc. On a
 * shared machine this is steadier than tokens/s: it does not count the time a process waited for a core.
 */
class CpuMeter {
  private readonly msPerTick: number;
  /**
   * `backendsOf(name)`: the pids of the Postgres backends whose application_name is `name` (pg_stat_activity),
   * so a server's own statements can be told from the rest of Postgres (background writers, autovacuum, the
   * other servers' connections); null where Postgres cannot be asked.
   */
  constructor(
    private readonly postmasterPid: number | null,
    private readonly backendsOf: ((name: string) => Promise<number[]>) | null = null,
  ) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // assume the usual 100 Hz
    }
    this.msPerTick = 1000 / hz;
  }

  /**
   * utime + stime in ms, the same for its exited (reaped) children, and the parent pid; null if the process is gone
   * or there is no /proc. `path` is `/proc/PID/stat`, or `/proc/PID/task/PID/stat` for the main thread alone.
   */
  private stat(
    pid: number,
    path = `/proc/${pid}/stat`,
  ): { ms: number; reapedMs: number; ppid: number; start: string } | null {
    try {
      const text = readFileSync(path, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const ticks = (i: number) => Number(fields[i]);
      return {
        ms: (ticks(11) + ticks(12)) * this.msPerTick,
        reapedMs: (ticks(13) + ticks(14)) * this.msPerTick,
        ppid: ticks(1),
        start: fields[19]!,
      };
    } catch {
      return null;
    }
  }

  /**
   * The server's CPU (all threads, and its event-loop thread), Postgres's in all, and by backend (pid and start
   * time, so a reused pid is another backend) that of the backends named `app` (its pool's application_name):
   * a backend that appears between two samples counts from zero, one that exits is lost (pools keep theirs
   * open under load). Backends are looked up only in the throwaway Postgres this bench started, whose
   * processes are this machine's (a BENCH_DATABASE_URL server's pids may be another machine's or namespace's).
   */
  async sample(serverPid: number, app?: string): Promise<CpuSample> {
    const server = this.stat(serverPid)?.ms ?? null;
    const loop = this.stat(serverPid, `/proc/${serverPid}/task/${serverPid}/stat`)?.ms ?? null;
    let own: Map<string, number> | null = null;
    if (app && this.backendsOf && this.postmasterPid !== null) {
      own = new Map();
      for (const pid of await this.backendsOf(app)) {
        const st = this.stat(pid);
        if (st && st.ppid === this.postmasterPid) own.set(`${pid}:${st.start}`, st.ms);
      }
    }
    if (this.postmasterPid === null) return { server, loop, postgres: null, own };
    // Backends come and go with the connection pools; one that exited is counted in the postmaster's children time.
    const postmaster = this.stat(this.postmasterPid);
    let postgres = postmaster ? postmaster.ms + postmaster.reapedMs : 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const st = this.stat(Number(entry));
      if (st && st.ppid === this.postmasterPid) postgres += st.ms;
    }
    return { server, loop, postgres, own };
  }
}

interface CpuSample {
  server: number | null;
  loop: number | null;
  postgres: number | null;
  /** CPU ms of the server's own backends, by pid and start time; null where they cannot be looked up. */
  own: Map<string, number> | null;
}

/** CPU ms the backends in `after` used since `before` (a backend new since then counts from zero). */
function ownBackendsMs(before: CpuSample | undefined, after: CpuSample | undefined): number | null {
  if (!before?.own || !after?.own) return null;
  let ms = 0;
  for (const [backend, value] of after.own) ms += value - (before.own.get(backend) ?? 0);
  return ms;
}

/** The postmaster of the throwaway Postgres (first line of postmaster.pid), when this machine can see it. */
function postmasterPid(pgDir: string | null): number | null {
  if (!pgDir || !existsSync('/proc/self/stat')) return null;
  try {
    return Number(readFileSync(join(pgDir, 'data/postmaster.pid'), 'utf8').split('\n')[0]) || null;
  } catch {
    return null;
  }
}

/** What one autocannon run sends: the next request body (null when the seeded supply ran out), and what to do with a 2xx body. */
interface Feed {
  next(): string | null;
  ok?(body: string): void;
}

/** DPoP proofs handed out in order, each once; null when the pre-signed supply ran out. */
type ProofFeed = () => string | null;

/** A DPoP header no server accepts, sent when the pre-signed proofs ran out (counted as an error). */
const EXHAUSTED_PROOF = 'exhausted';

/** A request body no server accepts, sent when the seeded supply is exhausted (counted as an error). */
const EXHAUSTED_BODY = 'grant_type=refresh_token&refresh_token=exhausted';

function waitForPort(child: ChildProcess, pattern: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no port within 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`exited ${code} before listening:\n${out}`)));
  });
}

/** One autocannon run against POST /token; `feed` null means the same static body every time. */
async function drive(
  port: number,
  path: string,
  headers: Record<string, string>,
  staticBody: string | null,
  feed: Feed | null,
  seconds: number,
  cpu?: { meter: CpuMeter; pid: number; app?: string },
  proofs?: ProofFeed,
  expectActive = false,
) {
  const samples = new Set<string>();
  let exhausted = 0;
  /** Introspection answers that said `active: false` (a 200 that is a failure here). */
  let inactive = 0;
  const request: autocannon.Request = { method: 'POST', path, headers };
  const withProof = (req: autocannon.Request): autocannon.Request => {
    if (!proofs) return req;
    const proof = proofs();
    if (proof === null) exhausted++;
    return { ...req, headers: { ...req.headers, dpop: proof ?? EXHAUSTED_PROOF } };
  };
  if (feed) {
    request.setupRequest = (req) => {
      const body = feed.next();
      if (body === null) exhausted++;
      return withProof({ ...req, body: body ?? EXHAUSTED_BODY });
    };
    request.onResponse = (status, body) => {
      if (status >= 200 && status < 300) feed.ok?.(body);
      else if (samples.size < 3) samples.add(`${status} ${body}`);
    };
  } else {
    request.body = staticBody!;
    if (expectActive) {
      request.onResponse = (status, body) => {
        if (status >= 200 && status < 300 && body.includes('"active":true')) return;
        inactive++;
        if (samples.size < 3) samples.add(`${status} ${body}`);
      };
    } else if (proofs) {
      request.setupRequest = withProof;
      request.onResponse = (status, body) => {
        if ((status < 200 || status >= 300) && samples.size < 3) samples.add(`${status} ${body}`);
      };
    }
  }
  const before = await cpu?.meter.sample(cpu.pid, cpu.app);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [request],
  });
  const after = await cpu?.meter.sample(cpu.pid, cpu.app);
  const perToken = (a: number | null | undefined, b: number | null | undefined) =>
    a == null || b == null || result['2xx'] === 0 ? null : Math.round(((b - a) * 1000) / result['2xx']);
  const cpuUsPerToken = {
    server: perToken(before?.server, after?.server),
    loop: perToken(before?.loop, after?.loop),
    backends: perToken(0, ownBackendsMs(before, after)),
    postgres: perToken(before?.postgres, after?.postgres),
  };
  return { result, samples: [...samples], exhausted, inactive, cpuUsPerToken };
}

function figures(name: string, run: Awaited<ReturnType<typeof drive>>): Figures {
  const r = run.result;
  return {
    name,
    tokensPerSec: (r['2xx'] - run.inactive) / DURATION,
    p50: r.latency.p50,
    p99: r.latency.p99,
    // autocannon already counts timeouts among errors.
    errors: r.errors + r.non2xx + run.inactive,
    requests: r.requests.total,
    statusCodes: Object.fromEntries(
      Object.entries(r.statusCodeStats as Record<string, { count: number }>).map(([k, v]) => [k, v.count]),
    ),
    errorSamples: run.samples,
    exhausted: run.exhausted,
    cpuUsPerToken: run.cpuUsPerToken,
  };
}

/** Raw signatures per second on one thread, the way the servers sign (node:crypto, ES256 R‖S): the floor under every token. */
function signaturesPerSec(pem: string, kid: string): number {
  const key = createPrivateKey(pem);
  const header = Buffer.from(JSON.stringify({ alg: ALG, kid, typ: 'at+jwt' })).toString('base64url');
  const until = Date.now() + 3000;
  let n = 0;
  while (Date.now() < until) {
    const iat = Math.floor(Date.now() / 1000);
    const payload = {
      iss: ISSUER,
      sub: 'c',
      aud: AUDIENCE,
      client_id: 'c',
      iat,
      exp: iat + 3600,
      jti: randomBytes(16).toString('base64url'),
    };
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    n++;
  }
  return n / 3;
}

const b64url = (n: number) => randomBytes(n).toString('base64url');
const s256 = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url');

/** Seeds the database directly: codes and refresh-token chains as Gatehouse would have stored them. */
class Seeder {
  private readonly pool: pg.Pool;
  constructor(
    url: string,
    private readonly schema: string,
    private readonly clientId: string,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
  }

  /** n unused codes, each with its own PKCE verifier, valid for an hour; returns the token-request bodies. */
  async codes(n: number, scopes: readonly string[] = SCOPES): Promise<string[]> {
    const bodies: string[] = [];
    const redirect = encodeURIComponent(REDIRECT_URI);
    for (let done = 0; done < n;) {
      const size = Math.min(20_000, n - done);
      const hashes: string[] = [];
      const challenges: string[] = [];
      for (let i = 0; i < size; i++) {
        const code = b64url(32);
        const verifier = b64url(32);
        hashes.push(hashSecret(code));
        challenges.push(s256(verifier));
        bodies.push(`grant_type=authorization_code&code=${code}&code_verifier=${verifier}&redirect_uri=${redirect}`);
      }
      await this.pool.query(
        `INSERT INTO "${this.schema}".authorization_codes
           (code_hash, client_id, redirect_uri, redirect_uri_given, code_challenge, scopes, resources, sub, auth_time, expires_at)
         SELECT h, $3, $4, true, c, $5::text[], $6::text[], 'user-' || (i % 1000), now(), now() + interval '1 hour'
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(h, c, i)`,
        [hashes, challenges, this.clientId, REDIRECT_URI, scopes, [AUDIENCE]],
      );
      done += size;
    }
    await this.analyze();
    return bodies;
  }

  /** n new refresh-token chains (generation 0, 30 days to live), bound to a DPoP key when `jkt` is given; returns their tokens. */
  async chains(n: number, jkt: string | null = null): Promise<string[]> {
    const tokens = Array.from({ length: n }, () => b64url(32));
    await this.pool.query(
      `INSERT INTO "${this.schema}".refresh_tokens
         (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at, dpop_jkt)
       SELECT h, f, 0, $3, 'user-' || i, $4::text[], $5::text[], now(), now() + interval '30 days', $6
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(h, f, i)`,
      [tokens.map(hashSecret), tokens.map(() => b64url(16)), this.clientId, SCOPES, [AUDIENCE], jkt],
    );
    await this.analyze();
    return tokens;
  }

  /**
   * Fresh planner statistics before every run, as autovacuum keeps them in production: otherwise whether an
   * autoanalyze happens to land inside a run (and changes the plans) would decide the result.
   */
  private async analyze(): Promise<void> {
    await this.pool.query(`ANALYZE "${this.schema}".authorization_codes, "${this.schema}".refresh_tokens`);
  }

  /** The pids of the backends connected with this application_name (a server's own pool). */
  async backendsOf(name: string): Promise<number[]> {
    const { rows } = await this.pool.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [name],
    );
    return rows.map((row) => row.pid);
  }

  /** The server's version and durability settings, for the report. */
  async settings(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const name of ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes']) {
      const { rows } = await this.pool.query<Record<string, string>>(`SHOW ${name}`);
      out[name] = Object.values(rows[0]!)[0]!;
    }
    return out;
  }

  /** Longest refresh-token chain so far (generations), for the report. */
  async longestChain(): Promise<number> {
    const { rows } = await this.pool.query<{ max: number | null }>(
      `SELECT max(generation) AS max FROM "${this.schema}".refresh_tokens`,
    );
    return rows[0]?.max ?? 0;
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

/** The bench client's DPoP key: n proofs for POST /token, signed now (unique jti), handed out once each. */
class ProofSigner {
  private constructor(
    private readonly privateKey: CryptoKey,
    private readonly jwk: JWK,
    readonly jkt: string,
  ) {}

  static async create(): Promise<ProofSigner> {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    return new ProofSigner(privateKey, jwk, await calculateJwkThumbprint(jwk));
  }

  async feed(n: number): Promise<ProofFeed> {
    const proofs: string[] = [];
    const iat = Math.floor(Date.now() / 1000);
    for (let i = 0; i < n; i++) {
      proofs.push(
        await new SignJWT({ jti: b64url(16), htm: 'POST', htu: `${ISSUER}/token`, iat })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: this.jwk })
          .sign(this.privateKey),
      );
    }
    let i = 0;
    return () => (i < proofs.length ? proofs[i++]! : null);
  }
}

/** Proofs pre-signed for each warm-up; the measured run gets enough for 3× the warm-up's pace. */
const WARMUP_PROOFS = Number(process.env.BENCH_WARMUP_PROOFS ?? 8000);

/** Codes handed out in order, each once. */
/** Bodies handed out in turn, round and round (introspection of many tokens). */
function cycleFeed(bodies: string[]): Feed {
  let i = 0;
  return { next: () => bodies[i++ % bodies.length]! };
}

function codeFeed(bodies: string[]): Feed {
  let i = 0;
  return { next: () => (i < bodies.length ? bodies[i++]! : null) };
}

/**
 * Chains handed out first come, first served: a request takes a live token, its response puts the rotated
 * one back. With one chain per connection each connection in effect follows its own chain; a chain whose
 * rotation failed is dropped (its error is counted).
 */
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

type Target = 'bare' | 'gatehouse' | 'gatehouse_warn' | 'peer';
const TARGETS: readonly Target[] = ['bare', 'gatehouse', 'gatehouse_warn', 'peer'];
const TARGET_NAME: Record<Target, string> = {
  bare: 'bare',
  gatehouse: 'Gatehouse',
  gatehouse_warn: 'Gatehouse at LOG_LEVEL=warn',
  peer: 'node-oidc-provider',
};
/** The application_name each target's Postgres pool connects with (set by the bench; the peer has no database). */
const BACKEND_NAMES: Partial<Record<Target, string>> = {
  bare: 'bench-bare',
  gatehouse: 'bench-gatehouse',
  gatehouse_warn: 'bench-gatehouse-warn',
};

/** Which targets run a workload: the peer the five it is configured for; the warn-level Gatehouse client_credentials only. */
function targetsFor(grant: GrantName): Target[] {
  const peer = PEER_GRANTS.has(grant);
  return TARGETS.filter((t) => (t !== 'peer' || peer) && (t !== 'gatehouse_warn' || grant === 'client_credentials'));
}

interface GrantResult {
  grant: GrantName;
  /** Every round's figures, per target, in the order they ran. */
  rounds: Partial<Record<Target, Figures[]>>;
  /** The median round of each target (by tokens/s). */
  median: Partial<Record<Target, Figures>>;
}

const median = (runs: Figures[]): Figures => {
  const sorted = [...runs].sort((a, b) => a.tokensPerSec - b.tokensPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
};

/** The peer's token and introspection endpoints' paths. */
const PATHS: Record<Target, { token: string; introspect: string }> = {
  bare: { token: '/token', introspect: '/introspect' },
  gatehouse: { token: '/token', introspect: '/introspect' },
  gatehouse_warn: { token: '/token', introspect: '/introspect' },
  peer: { token: '/token', introspect: '/token/introspection' },
};

/** Re-runs this bench under BENCH_NODE when the current Node is older than 22 (oidc-provider 9 needs 22+). */
function requireNode22(): boolean {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return true;
  const other = process.env.BENCH_NODE;
  if (!other) {
    throw new Error(
      `npm run bench needs Node 22 or later (node-oidc-provider 9, the peer, does); this is ${process.version}. ` +
        'Run it with a newer node first on PATH, or set BENCH_NODE=/path/to/node (22+).',
    );
  }
  const run = spawnSync(other, process.argv.slice(1), { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}

/** POST a form and parse the JSON answer; throws with the body on a non-2xx. */
async function postForm(port: number, path: string, headers: Record<string, string>, body: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

async function main(): Promise<void> {
  requireNode22();
  const grants = grantsToRun();
  // Before anything starts: a bad list, one that leaves the load generator no CPU, or no taskset fails here
  // rather than as a server that never answers or after the servers have started.
  const loadCpus = SERVER_CPUS ? loadGeneratorCpus(SERVER_CPUS) : null;
  if (SERVER_CPUS) execFileSync('taskset', ['--version'], { stdio: 'ignore' });
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const children: ChildProcess[] = [];
  let pgDir: string | null = null;
  let seeder: Seeder | null = null;
  const stop = async () => {
    await seeder?.end().catch(() => {});
    // Wait for the servers to exit (a --cpu-prof profile is written on exit) before Postgres goes.
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.exitCode !== null || c.signalCode !== null) return done();
            const timer = setTimeout(() => (c.kill('SIGKILL'), done()), 15_000);
            c.once('exit', () => (clearTimeout(timer), done()));
            c.kill('SIGTERM');
          }),
      ),
    );
    if (pgDir) execFileSync(join(root, 'scripts/pg-throwaway.sh'), ['stop', pgDir], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  };
  try {
    let databaseUrl = process.env.BENCH_DATABASE_URL;
    if (!databaseUrl) {
      pgDir = join(work, 'pg');
      execFileSync('chmod', ['755', work]);
      // PG_DURABLE=1: Postgres's own defaults (fsync, synchronous_commit, full_page_writes on), as in production.
      databaseUrl = execFileSync(join(root, 'scripts/pg-throwaway.sh'), ['start', pgDir], {
        encoding: 'utf8',
        env: { ...process.env, PG_DURABLE: '1' },
      }).trim();
    }
    const schema = `bench_${randomBytes(4).toString('hex')}`;

    // One key for every server, supplied as a file, so the bare endpoint and the peer sign exactly as Gatehouse does.
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
    const pem = await exportPKCS8(privateKey);
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
    const keyFile = join(work, 'signing-key.pem');
    writeFileSync(keyFile, pem, { mode: 0o600 });

    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      ISSUER,
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: databaseUrl,
      DATABASE_SCHEMA: schema,
      KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
      SIGNING_KEY_FILES: keyFile,
      SIGNING_ALG: ALG,
      RESOURCES: AUDIENCE,
      // The seeded grants' scopes are in the catalogue: Gatehouse issues only scopes it still allows.
      SCOPES: SCOPES.join(' '),
    };
    // The documented default log level (info) unless BENCH_LOG_LEVEL says otherwise.
    if (LOG_LEVEL) env.LOG_LEVEL = LOG_LEVEL;
    // BENCH_GATEHOUSE_ENV='NAME=value NAME=value': settings of Gatehouse's own to compare (not the defaults).
    for (const pair of (process.env.BENCH_GATEHOUSE_ENV ?? '').split(/\s+/).filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq < 1) throw new Error(`BENCH_GATEHOUSE_ENV: expected NAME=value, got ${pair}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    execFileSync(process.execPath, [CLI, 'migrate', 'up'], { env: { ...env, LOG_LEVEL: 'warn' }, stdio: 'ignore' });
    const createClient = (args: string[]) => {
      const created = JSON.parse(
        execFileSync(
          process.execPath,
          [CLI, 'clients', 'create', '--json', '--auth-method', 'client_secret_basic', ...args],
          { env: { ...env, LOG_LEVEL: 'warn' }, encoding: 'utf8' },
        ),
      ) as { client: { client_id: string }; client_secret: string };
      const id = created.client.client_id;
      const secret = created.client_secret;
      return {
        id,
        secret,
        secretHash: hashSecret(secret),
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
      };
    };
    // A service for client_credentials; a web app (code + refresh) for the user grants.
    const service = createClient(['--name', 'bench-service', '--grant-type', 'client_credentials']);
    const app = createClient([
      '--name',
      'bench-app',
      '--grant-type',
      'authorization_code',
      '--grant-type',
      'refresh_token',
      '--redirect-uri',
      REDIRECT_URI,
    ]);
    seeder = new Seeder(databaseUrl, schema, app.id);
    const pg_ = await seeder.settings();

    const profDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : null;
    const startGatehouse = async (logLevel: string | undefined, target: Target) => {
      const port = await freePort();
      // Each Gatehouse's pool under its own application_name (a URL parameter overrides Gatehouse's own), so
      // the idle one's background work (key-store refreshes, the janitor) is not counted as the other's.
      const url = new URL(databaseUrl);
      url.searchParams.set('application_name', BACKEND_NAMES[target]!);
      const child = spawnServer([...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), CLI, 'serve'], {
        env: { ...env, DATABASE_URL: url.toString(), PORT: String(port), ...(logLevel ? { LOG_LEVEL: logLevel } : {}) },
        // Its log lines go to /dev/null: written (one write per line, as to a pipe), not read.
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      // A server that exits (or cannot be spawned) fails the run at once instead of after waitForReady's 60 s.
      let fail: (err: Error) => void = () => {};
      const died = new Promise<never>((_, reject) => (fail = reject));
      died.catch(() => {}); // read only by the race below
      const onError = (err: Error) => fail(err);
      const onExit = (code: number | null) => fail(new Error(`Gatehouse exited (${code}) before it was ready`));
      child.once('error', onError).once('exit', onExit);
      try {
        await Promise.race([waitForReady(port), died]);
      } finally {
        child.off('error', onError).off('exit', onExit);
      }
      return { port, pid: child.pid! };
    };
    const servers: Partial<Record<Target, { port: number; pid: number }>> = {};
    servers.gatehouse = await startGatehouse(undefined, 'gatehouse');
    if (grants.includes('client_credentials')) servers.gatehouse_warn = await startGatehouse('warn', 'gatehouse_warn');

    // The bare endpoint uses Gatehouse's own tables (same columns, indexes and constraints) with its own seeded rows.
    const bare = spawnServer(
      // Profiled too, into DIR/bare, so the two profiles can be set side by side.
      [
        ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', join(profDir, 'bare')] : []),
        join(root, 'dist/bench/bare-server.js'),
      ],
      {
        env: {
          PATH: env.PATH,
          BARE_KEY_FILE: keyFile,
          BARE_ALG: ALG,
          BARE_KID: kid,
          BARE_CLIENTS: JSON.stringify({ [service.id]: service.secretHash, [app.id]: app.secretHash }),
          BARE_ISSUER: ISSUER,
          BARE_AUDIENCE: AUDIENCE,
          BARE_DATABASE_URL: databaseUrl,
          BARE_SCHEMA: schema,
          BARE_PREPARED: process.env.BENCH_BARE_PREPARED ?? '1',
          BARE_BATCH: BARE_BATCH ? '1' : '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(bare);
    servers.bare = { port: await waitForPort(bare, /LISTENING (\d+)/), pid: bare.pid! };

    // The peer: node-oidc-provider with the same key, clients, scopes and resource; in-memory adapter.
    if (grants.some((g) => PEER_GRANTS.has(g))) {
      const peer = spawnServer([join(root, 'dist/bench/peer-server.js')], {
        env: {
          PATH: env.PATH,
          NODE_ENV: 'production',
          PEER_ISSUER: ISSUER,
          PEER_AUDIENCE: AUDIENCE,
          PEER_KEY_FILE: keyFile,
          PEER_KID: kid,
          PEER_CLIENTS: JSON.stringify([
            { client_id: service.id, client_secret: service.secret, grant_types: ['client_credentials'] },
            {
              client_id: app.id,
              client_secret: app.secret,
              grant_types: ['authorization_code', 'refresh_token'],
              redirect_uris: [REDIRECT_URI],
            },
          ]),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(peer);
      servers.peer = { port: await waitForPort(peer, /LISTENING (\d+)/), pid: peer.pid! };
    }
    if (loadCpus) pinLoadGenerator(loadCpus);

    /** Code-exchange bodies for a target: seeded in the database, or minted by the peer's own models. */
    const codesFor = async (target: Target, n: number, scopes: readonly string[], opaque = false) => {
      if (target !== 'peer') return seeder!.codes(n, scopes);
      const res = await fetch(`http://127.0.0.1:${servers.peer!.port}/bench/codes`, {
        method: 'POST',
        body: JSON.stringify({ n, opaque }),
      });
      if (!res.ok) throw new Error(`peer code minting failed: ${res.status} ${await res.text()}`);
      return (await res.json()) as string[];
    };
    /** n live refresh tokens for a target: seeded chains, or (the peer) redeemed codes. */
    const chainsFor = async (target: Target, n: number): Promise<string[]> => {
      if (target !== 'peer') return seeder!.chains(n);
      const bodies = await codesFor('peer', n, SCOPES);
      const tokens: string[] = [];
      for (let i = 0; i < bodies.length; i += 25) {
        const answers = await Promise.all(
          bodies.slice(i, i + 25).map((b) => postForm(servers.peer!.port, '/token', app.headers, b)),
        );
        tokens.push(...answers.map((a) => a.refresh_token!));
      }
      return tokens;
    };
    /** A user's access token and live refresh token from each target, for the introspection workloads. */
    const introspected: Partial<Record<Target, { access: string; refresh: string }>> = {};
    const tokensToIntrospect = async (target: Target) => {
      let answer: Record<string, string>;
      if (target === 'peer') {
        // Its JWT access tokens cannot be introspected (unsupported_token_type): a user's opaque one is.
        const [body] = await codesFor('peer', 1, SCOPES, true);
        answer = await postForm(servers.peer!.port, '/token', app.headers, body!);
      } else {
        const [token] = await seeder!.chains(1);
        answer = await postForm(
          servers[target]!.port,
          '/token',
          app.headers,
          `grant_type=refresh_token&refresh_token=${token}`,
        );
      }
      return (introspected[target] = { access: answer.access_token!, refresh: answer.refresh_token! });
    };
    /** DISTINCT_TOKENS access tokens of users from each target (the peer: opaque ones), for introspection_access_distinct. */
    const distinct: Partial<Record<Target, string[]>> = {};
    const distinctAccessTokens = async (target: Target): Promise<string[]> => {
      const bodies =
        target === 'peer'
          ? await codesFor('peer', DISTINCT_TOKENS, SCOPES, true)
          : (await seeder!.chains(DISTINCT_TOKENS)).map((t) => `grant_type=refresh_token&refresh_token=${t}`);
      const tokens: string[] = [];
      for (let i = 0; i < bodies.length; i += 25) {
        const answers = await Promise.all(
          bodies.slice(i, i + 25).map((b) => postForm(servers[target]!.port, PATHS[target].token, app.headers, b)),
        );
        tokens.push(...answers.map((a) => a.access_token!));
      }
      return (distinct[target] = tokens);
    };

    const sigs = signaturesPerSec(pem, kid);
    const dpop = await ProofSigner.create();
    /** Proofs for the measured run: 3× the warm-up's pace (6× if it ran out), at least 1000/s. */
    const proofsFor = async (warm: Awaited<ReturnType<typeof drive>>) =>
      dpop.feed(Math.ceil(Math.max(warm.result['2xx'] / WARMUP, 1000) * (warm.exhausted > 0 ? 6 : 3) * DURATION));
    const meter = new CpuMeter(postmasterPid(pgDir), (name) => seeder!.backendsOf(name));
    const results: GrantResult[] = [];
    let longestChain = 0;

    const measure = async (grant: GrantName, target: Target): Promise<Figures> => {
      const { port, pid } = servers[target]!;
      const paths = PATHS[target];
      const name = `${TARGET_NAME[target]} ${grant}`;
      const cpu = { meter, pid, ...(BACKEND_NAMES[target] ? { app: BACKEND_NAMES[target] } : {}) };
      if (grant === 'client_credentials') {
        const body = 'grant_type=client_credentials';
        await drive(port, paths.token, service.headers, body, null, WARMUP); // warm-up: JIT, caches, pool
        return figures(name, await drive(port, paths.token, service.headers, body, null, DURATION, cpu));
      }
      if (grant === 'introspection_access' || grant === 'introspection_refresh') {
        const tokens = introspected[target] ?? (await tokensToIntrospect(target));
        const body = `token=${grant === 'introspection_access' ? tokens.access : tokens.refresh}`;
        await drive(port, paths.introspect, app.headers, body, null, WARMUP, undefined, undefined, true);
        return figures(
          name,
          await drive(port, paths.introspect, app.headers, body, null, DURATION, cpu, undefined, true),
        );
      }
      if (grant === 'introspection_access_distinct') {
        const bodies = (distinct[target] ?? (await distinctAccessTokens(target))).map((t) => `token=${t}`);
        await drive(port, paths.introspect, app.headers, null, cycleFeed(bodies), WARMUP, undefined, undefined, true);
        return figures(
          name,
          await drive(port, paths.introspect, app.headers, null, cycleFeed(bodies), DURATION, cpu, undefined, true),
        );
      }
      if (grant === 'authorization_code' || grant === 'authorization_code_openid') {
        const scopes = grant === 'authorization_code' ? SCOPES : ['openid', ...SCOPES];
        const warm = await drive(
          port,
          paths.token,
          app.headers,
          null,
          codeFeed(await codesFor(target, WARMUP_CODES, scopes)),
          WARMUP,
        );
        // Unused codes for 3× the warm-up's pace (6× if the warm-up ran out; JIT makes warm-ups slow), at least 2000/s.
        const pace = Math.max(warm.result['2xx'] / WARMUP, 2000) * (warm.exhausted > 0 ? 6 : 3);
        const codes = await codesFor(target, Math.ceil(pace * DURATION) + CONNECTIONS, scopes);
        return figures(name, await drive(port, paths.token, app.headers, null, codeFeed(codes), DURATION, cpu));
      }
      if (grant === 'client_credentials+dpop') {
        const body = 'grant_type=client_credentials';
        const warm = await drive(
          port,
          paths.token,
          service.headers,
          body,
          null,
          WARMUP,
          undefined,
          await dpop.feed(WARMUP_PROOFS),
        );
        const proofs = await proofsFor(warm);
        return figures(name, await drive(port, paths.token, service.headers, body, null, DURATION, cpu, proofs));
      }
      if (grant === 'refresh_token+dpop') {
        const warm = await drive(
          port,
          paths.token,
          app.headers,
          null,
          chainFeed(await seeder!.chains(CHAINS, dpop.jkt)),
          WARMUP,
          undefined,
          await dpop.feed(WARMUP_PROOFS),
        );
        const proofs = await proofsFor(warm);
        const chains = chainFeed(await seeder!.chains(CHAINS, dpop.jkt));
        return figures(name, await drive(port, paths.token, app.headers, null, chains, DURATION, cpu, proofs));
      }
      await drive(port, paths.token, app.headers, null, chainFeed(await chainsFor(target, CHAINS)), WARMUP);
      const chains = chainFeed(await chainsFor(target, CHAINS));
      return figures(name, await drive(port, paths.token, app.headers, null, chains, DURATION, cpu));
    };

    for (const grant of grants) {
      const result: GrantResult = { grant, rounds: {}, median: {} };
      // Rounds interleave the targets (bare, Gatehouse, …, peer, then again), so load drift on a shared
      // machine hits each about equally; each target's median round is reported.
      for (let round = 1; round <= ROUNDS; round++) {
        for (const target of targetsFor(grant)) {
          const f = await measure(grant, target);
          (result.rounds[target] ??= []).push(f);
          process.stderr.write(`${grant} round ${round}: ${TARGET_NAME[target]} ${f.tokensPerSec.toFixed(0)}/s\n`);
        }
      }
      for (const target of targetsFor(grant)) result.median[target] = median(result.rounds[target]!);
      results.push(result);
      if (grant.startsWith('refresh_token')) longestChain = await seeder.longestChain();
    }
    report(sigs, results, longestChain, pg_);
  } finally {
    await stop();
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

/** CPU per token (median rounds), which a busy shared machine disturbs less than throughput; empty where /proc is unavailable. */
function cpuTable(results: GrantResult[]): string {
  const us = (v: number | null | undefined) => (v == null ? '–' : String(v));
  if (results.every((r) => r.median.bare?.cpuUsPerToken.server == null)) return '';
  const rows = results.map(({ grant, median: m }) => {
    const cell = (f: Figures | undefined) =>
      f
        ? `${us(f.cpuUsPerToken.server)} (${us(f.cpuUsPerToken.loop)}) + ${us(f.cpuUsPerToken.backends)} of ${us(f.cpuUsPerToken.postgres)}`
        : '–';
    const peer = m.peer ? `${us(m.peer.cpuUsPerToken.server)} (${us(m.peer.cpuUsPerToken.loop)})` : '–';
    return `| ${grant} | ${cell(m.bare)} | ${cell(m.gatehouse)} | ${peer} |`;
  });
  return `
CPU time per request in each median round, µs: the server process with its threads (its event-loop thread alone)
+ its own Postgres backends, of all of Postgres (background processes and autovacuum included):

| workload | bare | Gatehouse | node-oidc-provider (no database) |
|---|---:|---:|---:|
${rows.join('\n')}
`;
}

const BARE_WORK: Record<GrantName, string> = {
  client_credentials: 'form + SHA-256 + sign',
  authorization_code:
    'form + 3× SHA-256 + UPDATE…RETURNING/INSERT in one statement, shared by concurrent requests (≤ 64) + sign',
  refresh_token:
    'form + 2× SHA-256 + new token + UPDATE…RETURNING/INSERT in one statement, shared by concurrent requests (≤ 64) + sign',
  introspection_access: 'form + SHA-256 + verify the JWT + one SELECT (grants revoked since?), shared (≤ 64)',
  introspection_access_distinct: 'as introspection_access, a different token each request (all verified)',
  introspection_refresh: 'form + 2× SHA-256 + one SELECT of the live refresh token, shared (≤ 64)',
  authorization_code_openid: 'as authorization_code + sign an ID token',
  'client_credentials+dpop': 'form + SHA-256 + DPoP proof (verify, thumbprint, jti INSERT) + sign with cnf',
  'refresh_token+dpop':
    'form + 2× SHA-256 + DPoP proof (verify, thumbprint, jti INSERT) + new token + key-bound UPDATE…RETURNING/INSERT (shared, ≤ 64) + sign with cnf',
};

const rate = (f: Figures | undefined) => (f ? f.tokensPerSec.toFixed(0) : '–');
const ratio = (a: Figures | undefined, b: Figures | undefined) =>
  a && b && b.tokensPerSec > 0 ? (a.tokensPerSec / b.tokensPerSec).toFixed(2) : '–';

/** The machine, for the README: CPU model and count, memory, Node, Postgres and its durability settings. */
function machine(pgSettings: Record<string, string>): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Postgres ${pgSettings.server_version} (fsync ${pgSettings.fsync}, synchronous_commit ${pgSettings.synchronous_commit}, full_page_writes ${pgSettings.full_page_writes})`;
}

/** The results table: each workload's median rounds and the ratios the issue's targets are stated in. */
function resultsTable(results: GrantResult[]): string {
  const rows = results.map(({ grant, median: m }) => {
    const gh = m.gatehouse!;
    const extra = m.gatehouse_warn
      ? ` (warn: ${rate(m.gatehouse_warn)}/s; info ÷ warn **${ratio(gh, m.gatehouse_warn)}**)`
      : '';
    return `| ${grant} | ${rate(gh)}${extra} | ${rate(m.bare)} | ${rate(m.peer)} | **${ratio(gh, m.bare)}** | **${ratio(gh, m.peer)}** | ${gh.p50} / ${gh.p99} | ${gh.errors} |`;
  });
  return `| workload (median of ${ROUNDS} interleaved rounds) | Gatehouse /s | bare /s | node-oidc-provider /s | Gatehouse ÷ bare | Gatehouse ÷ peer | Gatehouse p50 / p99 ms | Gatehouse errors |
|---|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}`;
}

function report(sigs: number, results: GrantResult[], longestChain: number, pgSettings: Record<string, string>): void {
  const date = new Date().toISOString();
  const logLevel = LOG_LEVEL ?? 'info (the default)';
  const problems = results.flatMap(({ rounds }) =>
    Object.values(rounds)
      .flat()
      .filter((f) => f.errors > 0)
      .map(
        (f) =>
          `- ${f.name}: ${f.errors} errors (status ${JSON.stringify(f.statusCodes)}${f.exhausted ? `, ${f.exhausted} sent with nothing seeded left` : ''}) ${f.errorSamples.map((e) => `\`${e.slice(0, 300)}\``).join(' ')}`,
      ),
  );
  const summary = `${date} · ${machine(pgSettings)} · ${CONNECTIONS} connections · ${DURATION} s per round (after ${WARMUP} s warm-up) · ${ROUNDS} rounds · ${ALG} · Gatehouse LOG_LEVEL=${logLevel}, its log lines written to /dev/null${process.env.BENCH_GATEHOUSE_ENV ? ` · Gatehouse settings: ${process.env.BENCH_GATEHOUSE_ENV}` : ''}${SERVER_CPUS ? ` · servers held to CPU ${SERVER_CPUS}, the load generator to the others` : ''}${BARE_BATCH ? '' : ' · the bare endpoint sends ONE STATEMENT PER REQUEST (BENCH_BARE_BATCH=0, a comparison; Gatehouse batches)'} · node-oidc-provider with its in-memory adapter (persists nothing)`;
  const md = `# Token endpoint benchmark

${summary}

Raw ES256 signing on one thread (node:crypto): ${sigs.toFixed(0)} signatures/s.

${resultsTable(results)}

Targets (issue 14): refresh_token and authorization_code ≥ 0.90 of bare and ≥ 1.0 × the peer; introspection ≥ 1.5 × the
peer; client_credentials ≥ 2.2 × the peer; info logging ≥ 0.95 of warn.
${cpuTable(results)}
Bare endpoint (bench/bare-server.ts, same framework, key, signing and Postgres tables):
${results.map((r) => `- ${r.grant}: ${BARE_WORK[r.grant]}`).join('\n')}
${results.some((r) => r.grant.startsWith('refresh_token')) ? `\nRefresh: ${CHAINS} chains per run${CHAINS === CONNECTIONS ? ', one per connection' : ''}, each response's token used for the next request (longest chain: ${longestChain} generations).\n` : ''}${problems.length > 0 ? `\nErrors:\n${problems.join('\n')}\n` : ''}`;
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'token.md'), md);
  writeFileSync(
    join(out, 'token.json'),
    `${JSON.stringify(
      {
        date,
        machine: machine(pgSettings),
        node: process.version,
        postgres: pgSettings,
        logLevel,
        connections: CONNECTIONS,
        durationSec: DURATION,
        warmupSec: WARMUP,
        rounds: ROUNDS,
        alg: ALG,
        signaturesPerSec: sigs,
        longestRefreshChain: longestChain,
        grants: results,
      },
      null,
      2,
    )}\n`,
  );
  if (WRITE_README) writeReadme(summary, results, problems);
  process.stdout.write(md);
}

const README_START = '<!-- results:start (written by npm run bench -- --readme) -->';
const README_END = '<!-- results:end -->';

/** Replaces the results section of bench/README.md (between its markers) with this run's table. */
function writeReadme(summary: string, results: GrantResult[], problems: string[]): void {
  const file = join(root, 'bench/README.md');
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(README_START);
  const b = text.indexOf(README_END);
  if (a === -1 || b < a) throw new Error(`bench/README.md has no ${README_START} … ${README_END} section`);
  const section = `${README_START}
${summary}

${resultsTable(results)}
${cpuTable(results)}${problems.length > 0 ? `\nErrors in this run:\n${problems.join('\n')}\n` : ''}
`;
  writeFileSync(file, text.slice(0, a) + section + text.slice(b));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
