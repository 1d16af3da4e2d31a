// npm run bench: POST /token on Gatehouse (real Postgres) for each grant, beside the bare cost of the same
// token on this machine (bench/bare-server.ts), driven by autocannon at a fixed concurrency for a fixed time.
//   client_credentials   the same request every time
//   authorization_code   every request redeems its own pre-seeded code (unique, hashed as Gatehouse hashes
//                        it, bound to a PKCE S256 challenge and a redirect URI), so none is used twice
//   refresh_token        pre-seeded chains, one per connection: each response's new refresh token is the
//                        next request's, so every chain rotates in sequence and never forks
//   client_credentials+dpop, refresh_token+dpop
//                        the same with a fresh DPoP proof (RFC 9449) on every request, pre-signed by one
//                        ES256 client key (unique jti, current iat); the refresh chains are bound to that key
// Codes and chains are seeded straight into the database (getting a code over HTTP needs the browser
// sign-in handshake). Listens on 127.0.0.1 only and stops by itself. Results: bench/results/token.{json,md}.
//
// Environment: BENCH_CONNECTIONS (50), BENCH_DURATION seconds (10), BENCH_GRANTS (all five, comma-separated),
// BENCH_REFRESH_CHAINS (default: one per connection), BENCH_DATABASE_URL (default: a throwaway Postgres from
// scripts/pg-throwaway.sh), BENCH_CPU_PROF=DIR (run Gatehouse under node --cpu-prof, profiles written to DIR),
// BENCH_BARE_PREPARED=0 (the bare endpoint sends unnamed statements instead of prepared ones).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import {
  calculateJwkThumbprint,
  CompactSign,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  type CryptoKey,
  type JWK,
  SignJWT,
} from 'jose';
import pg from 'pg';
import { hashSecret } from '../src/oauth/secrets.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(root, 'dist/src/cli/main.js');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
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
  'authorization_code_openid',
  'refresh_token',
  'client_credentials+dpop',
  'refresh_token+dpop',
] as const;
type GrantName = (typeof ALL_GRANTS)[number];
/** Codes seeded for each warm-up; the measured run gets enough for 3× the warm-up's pace. */
const WARMUP_CODES = Number(process.env.BENCH_WARMUP_CODES ?? 30_000);
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
  /** CPU time per token (µs) of the server process and of Postgres during the measured run; null where /proc cannot tell. */
  cpuUsPerToken: { server: number | null; postgres: number | null };
}

/**
 * CPU time used by a process, and by Postgres (its postmaster and every backend), read from /proc. On a
 * shared machine this is steadier than tokens/s: it does not count the time a process waited for a core.
 */
class CpuMeter {
  private readonly msPerTick: number;
  constructor(private readonly postmasterPid: number | null) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // assume the usual 100 Hz
    }
    this.msPerTick = 1000 / hz;
  }

  /** utime + stime in ms, the same for its exited (reaped) children, and the parent pid; null if the process is gone or there is no /proc. */
  private stat(pid: number): { ms: number; reapedMs: number; ppid: number } | null {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const ticks = (i: number) => Number(fields[i]);
      return {
        ms: (ticks(11) + ticks(12)) * this.msPerTick,
        reapedMs: (ticks(13) + ticks(14)) * this.msPerTick,
        ppid: ticks(1),
      };
    } catch {
      return null;
    }
  }

  sample(serverPid: number): { server: number | null; postgres: number | null } {
    const server = this.stat(serverPid)?.ms ?? null;
    if (this.postmasterPid === null) return { server, postgres: null };
    // Backends come and go with the connection pools; one that exited is counted in the postmaster's children time.
    const postmaster = this.stat(this.postmasterPid);
    let postgres = postmaster ? postmaster.ms + postmaster.reapedMs : 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const st = this.stat(Number(entry));
      if (st && st.ppid === this.postmasterPid) postgres += st.ms;
    }
    return { server, postgres };
  }
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
  headers: Record<string, string>,
  staticBody: string | null,
  feed: Feed | null,
  seconds: number,
  cpu?: { meter: CpuMeter; pid: number },
  proofs?: ProofFeed,
) {
  const samples = new Set<string>();
  let exhausted = 0;
  const request: autocannon.Request = { method: 'POST', path: '/token', headers };
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
    if (proofs) {
      request.setupRequest = withProof;
      request.onResponse = (status, body) => {
        if ((status < 200 || status >= 300) && samples.size < 3) samples.add(`${status} ${body}`);
      };
    }
  }
  const before = cpu?.meter.sample(cpu.pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [request],
  });
  const after = cpu?.meter.sample(cpu.pid);
  const perToken = (a: number | null | undefined, b: number | null | undefined) =>
    a == null || b == null || result['2xx'] === 0 ? null : Math.round(((b - a) * 1000) / result['2xx']);
  const cpuUsPerToken = {
    server: perToken(before?.server, after?.server),
    postgres: perToken(before?.postgres, after?.postgres),
  };
  return { result, samples: [...samples], exhausted, cpuUsPerToken };
}

function figures(name: string, run: Awaited<ReturnType<typeof drive>>): Figures {
  const r = run.result;
  return {
    name,
    tokensPerSec: r['2xx'] / DURATION,
    p50: r.latency.p50,
    p99: r.latency.p99,
    // autocannon already counts timeouts among errors.
    errors: r.errors + r.non2xx,
    requests: r.requests.total,
    statusCodes: Object.fromEntries(
      Object.entries(r.statusCodeStats as Record<string, { count: number }>).map(([k, v]) => [k, v.count]),
    ),
    errorSamples: run.samples,
    exhausted: run.exhausted,
    cpuUsPerToken: run.cpuUsPerToken,
  };
}

/** Raw signatures per second on one thread, the way both servers sign: the floor under every token. */
async function signaturesPerSec(pem: string, kid: string): Promise<number> {
  const key = await importPKCS8(pem, ALG);
  const encoder = new TextEncoder();
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
    await new CompactSign(encoder.encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: ALG, kid, typ: 'at+jwt' })
      .sign(key);
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

interface GrantResult {
  grant: GrantName;
  bare: Figures;
  gatehouse: Figures;
  ratio: number;
}

async function main(): Promise<void> {
  const grants = grantsToRun();
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
      databaseUrl = execFileSync(join(root, 'scripts/pg-throwaway.sh'), ['start', pgDir], { encoding: 'utf8' }).trim();
    }
    const schema = `bench_${randomBytes(4).toString('hex')}`;

    // One key for both servers, supplied as a file, so the bare endpoint signs exactly as Gatehouse does.
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
    const pem = await exportPKCS8(privateKey);
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
    const keyFile = join(work, 'signing-key.pem');
    writeFileSync(keyFile, pem, { mode: 0o600 });

    const env = {
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
      LOG_LEVEL: 'warn',
    };
    execFileSync(process.execPath, [CLI, 'migrate', 'up'], { env, stdio: 'ignore' });
    const createClient = (args: string[]) => {
      const created = JSON.parse(
        execFileSync(
          process.execPath,
          [CLI, 'clients', 'create', '--json', '--auth-method', 'client_secret_basic', ...args],
          { env, encoding: 'utf8' },
        ),
      ) as { client: { client_id: string }; client_secret: string };
      const id = created.client.client_id;
      const secret = created.client_secret;
      return {
        id,
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

    const profDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : null;
    const gatehousePort = await freePort();
    const gatehouse = spawn(
      process.execPath,
      [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), CLI, 'serve'],
      {
        env: { ...env, PORT: String(gatehousePort) },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    children.push(gatehouse);
    await waitForReady(gatehousePort);

    // The bare endpoint uses Gatehouse's own tables (same columns, indexes and constraints) with its own seeded rows.
    const bare = spawn(process.execPath, [join(root, 'dist/bench/bare-server.js')], {
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
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(bare);
    const barePort = await waitForPort(bare, /LISTENING (\d+)/);

    const sigs = await signaturesPerSec(pem, kid);
    const dpop = await ProofSigner.create();
    /** Proofs for the measured run: 3× the warm-up's pace (6× if it ran out), at least 1000/s. */
    const proofsFor = async (warm: Awaited<ReturnType<typeof drive>>) =>
      dpop.feed(Math.ceil(Math.max(warm.result['2xx'] / WARMUP, 1000) * (warm.exhausted > 0 ? 6 : 3) * DURATION));
    const meter = new CpuMeter(postmasterPid(pgDir));
    const results: GrantResult[] = [];
    let longestChain = 0;
    for (const grant of grants) {
      const measure = async (name: string, port: number, pid: number): Promise<Figures> => {
        const cpu = { meter, pid };
        if (grant === 'client_credentials') {
          await drive(port, service.headers, 'grant_type=client_credentials', null, WARMUP); // warm-up: JIT, caches, pool
          return figures(
            name,
            await drive(port, service.headers, 'grant_type=client_credentials', null, DURATION, cpu),
          );
        }
        if (grant === 'authorization_code' || grant === 'authorization_code_openid') {
          const scopes = grant === 'authorization_code' ? SCOPES : ['openid', ...SCOPES];
          const warm = await drive(
            port,
            app.headers,
            null,
            codeFeed(await seeder!.codes(WARMUP_CODES, scopes)),
            WARMUP,
          );
          // Unused codes for 3× the warm-up's pace (6× if the warm-up ran out; JIT makes warm-ups slow), at least 2000/s.
          const pace = Math.max(warm.result['2xx'] / WARMUP, 2000) * (warm.exhausted > 0 ? 6 : 3);
          return figures(
            name,
            await drive(
              port,
              app.headers,
              null,
              codeFeed(await seeder!.codes(Math.ceil(pace * DURATION) + CONNECTIONS, scopes)),
              DURATION,
              cpu,
            ),
          );
        }
        if (grant === 'client_credentials+dpop') {
          const body = 'grant_type=client_credentials';
          const warm = await drive(
            port,
            service.headers,
            body,
            null,
            WARMUP,
            undefined,
            await dpop.feed(WARMUP_PROOFS),
          );
          const proofs = await proofsFor(warm);
          return figures(name, await drive(port, service.headers, body, null, DURATION, cpu, proofs));
        }
        if (grant === 'refresh_token+dpop') {
          const warm = await drive(
            port,
            app.headers,
            null,
            chainFeed(await seeder!.chains(CHAINS, dpop.jkt)),
            WARMUP,
            undefined,
            await dpop.feed(WARMUP_PROOFS),
          );
          const proofs = await proofsFor(warm);
          const chains = chainFeed(await seeder!.chains(CHAINS, dpop.jkt));
          return figures(name, await drive(port, app.headers, null, chains, DURATION, cpu, proofs));
        }
        await drive(port, app.headers, null, chainFeed(await seeder!.chains(CHAINS)), WARMUP);
        return figures(
          name,
          await drive(port, app.headers, null, chainFeed(await seeder!.chains(CHAINS)), DURATION, cpu),
        );
      };
      const bareFigures = await measure(`bare ${grant}`, barePort, bare.pid!);
      const gatehouseFigures = await measure(`Gatehouse ${grant}`, gatehousePort, gatehouse.pid!);
      results.push({
        grant,
        bare: bareFigures,
        gatehouse: gatehouseFigures,
        ratio: gatehouseFigures.tokensPerSec / bareFigures.tokensPerSec,
      });
      process.stderr.write(
        `${grant}: bare ${bareFigures.tokensPerSec.toFixed(0)}/s, Gatehouse ${gatehouseFigures.tokensPerSec.toFixed(0)}/s\n`,
      );
      if (grant.startsWith('refresh_token')) longestChain = await seeder.longestChain();
    }
    report(sigs, results, longestChain);
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

/** CPU per token, which a busy shared machine disturbs less than throughput; empty where /proc is unavailable. */
function cpuTable(results: GrantResult[]): string {
  const us = (v: number | null) => (v === null ? '–' : String(v));
  if (results.every((r) => r.bare.cpuUsPerToken.server === null)) return '';
  const rows = results.map(({ grant, bare, gatehouse: gh }) => {
    const total = (f: Figures) =>
      f.cpuUsPerToken.server === null ? null : f.cpuUsPerToken.server + (f.cpuUsPerToken.postgres ?? 0);
    const b = total(bare);
    const g = total(gh);
    return `| ${grant} | ${us(bare.cpuUsPerToken.server)} | ${us(gh.cpuUsPerToken.server)} | ${us(bare.cpuUsPerToken.postgres)} | ${us(gh.cpuUsPerToken.postgres)} | ${b !== null && g !== null && g > 0 ? (b / g).toFixed(2) : '–'} |`;
  });
  return `
CPU time per token during the measured run (µs; server process including its crypto threads, and Postgres):

| grant | bare server | Gatehouse server | bare Postgres | Gatehouse Postgres | bare ÷ Gatehouse (server + Postgres) |
|---|---:|---:|---:|---:|---:|
${rows.join('\n')}
`;
}

const BARE_WORK: Record<GrantName, string> = {
  client_credentials: 'form + SHA-256 + sign',
  authorization_code: 'form + 3× SHA-256 + UPDATE…RETURNING/INSERT in one statement + sign',
  authorization_code_openid: 'as authorization_code + sign an ID token',
  refresh_token: 'form + 2× SHA-256 + new token + UPDATE…RETURNING/INSERT in one statement + sign',
  'client_credentials+dpop': 'form + SHA-256 + DPoP proof (verify, thumbprint, jti INSERT) + sign with cnf',
  'refresh_token+dpop':
    'form + 2× SHA-256 + DPoP proof (verify, thumbprint, jti INSERT) + new token + key-bound UPDATE…RETURNING/INSERT + sign with cnf',
};

function report(sigs: number, results: GrantResult[], longestChain: number): void {
  const rows = results.map(({ grant, bare, gatehouse: gh, ratio }) =>
    [
      grant,
      bare.tokensPerSec.toFixed(0),
      gh.tokensPerSec.toFixed(0),
      `${bare.p50} / ${bare.p99}`,
      `${gh.p50} / ${gh.p99}`,
      `${bare.errors} / ${gh.errors}`,
      (gh.tokensPerSec / sigs).toFixed(2),
      `**${ratio.toFixed(2)}**`,
    ].join(' | '),
  );
  const problems = results.flatMap(({ bare, gatehouse }) =>
    [bare, gatehouse]
      .filter((f) => f.errors > 0)
      .map(
        (f) =>
          `- ${f.name}: ${f.errors} errors (status ${JSON.stringify(f.statusCodes)}${f.exhausted ? `, ${f.exhausted} sent with nothing seeded left` : ''}) ${f.errorSamples.map((s) => `\`${s}\``).join(' ')}`,
      ),
  );
  const md = `# Token endpoint benchmark

${new Date().toISOString()} · Node ${process.version} · ${CONNECTIONS} connections · ${DURATION} s (after ${WARMUP} s warm-up) · ${ALG} · Postgres · LOG_LEVEL=warn

Raw signing on one thread: ${sigs.toFixed(0)} signatures/s.

| grant | bare tokens/s | Gatehouse tokens/s | bare p50 / p99 ms | Gatehouse p50 / p99 ms | errors bare / Gatehouse | Gatehouse ÷ signatures/s | Gatehouse / bare |
|---|---:|---:|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r} |`).join('\n')}

Target: Gatehouse / bare ≥ 0.80, zero errors, p99 < 25 ms.
${cpuTable(results)}
Bare endpoint (bench/bare-server.ts, same framework, key, library and Postgres tables):
${results.map((r) => `- ${r.grant}: ${BARE_WORK[r.grant]}`).join('\n')}
${results.some((r) => r.grant === 'authorization_code') ? '\nEvery code is seeded unused (PKCE S256, redirect URI) and redeemed once; the client may refresh, so each redemption also starts a refresh-token chain.\n' : ''}${results.some((r) => r.grant.endsWith('+dpop')) ? '\nDPoP: a fresh ES256 proof per request (pre-signed, unique jti), verified and its jti recorded by both servers; the DPoP refresh chains are bound to the proof key.\n' : ''}${results.some((r) => r.grant.startsWith('refresh_token')) ? `\nRefresh: ${CHAINS} chains per run${CHAINS === CONNECTIONS ? ', one per connection' : ''}, each response's token used for the next request (longest chain: ${longestChain} generations).\n` : ''}${problems.length > 0 ? `\nErrors:\n${problems.join('\n')}\n` : ''}`;
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'token.md'), md);
  writeFileSync(
    join(out, 'token.json'),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        connections: CONNECTIONS,
        durationSec: DURATION,
        warmupSec: WARMUP,
        alg: ALG,
        signaturesPerSec: sigs,
        longestRefreshChain: longestChain,
        grants: results,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(md);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
