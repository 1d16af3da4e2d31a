// npm run bench: POST /token client_credentials on Gatehouse (real Postgres) beside the bare cost of
// the same token on this machine, driven by autocannon at a fixed concurrency for a fixed time.
// Listens on 127.0.0.1 only and stops by itself. Results: bench/results/token.json and token.md.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, SignJWT } from 'jose';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(root, 'dist/src/cli/main.js');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const ALG = 'ES256';
const ISSUER = 'http://127.0.0.1:4000';
const AUDIENCE = 'https://api.bench.example';

interface Figures {
  name: string;
  tokensPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
}

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

async function load(name: string, port: number, headers: Record<string, string>, body: string): Promise<Figures> {
  const opts = { url: `http://127.0.0.1:${port}/token`, method: 'POST' as const, headers, body };
  await autocannon({ ...opts, connections: CONNECTIONS, duration: 2 }); // warm-up: JIT, caches, pool
  const r = await autocannon({ ...opts, connections: CONNECTIONS, duration: DURATION });
  return {
    name,
    tokensPerSec: r['2xx'] / DURATION,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
    requests: r.requests.total,
  };
}

/** Raw signatures per second on one thread: the floor under every token. */
async function signaturesPerSec(pem: string, kid: string): Promise<number> {
  const key = await importPKCS8(pem, ALG);
  const until = Date.now() + 3000;
  let n = 0;
  while (Date.now() < until) {
    await new SignJWT({ client_id: 'c' }).setProtectedHeader({ alg: ALG, kid, typ: 'at+jwt' }).setIssuedAt().sign(key);
    n++;
  }
  return n / 3;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const children: ChildProcess[] = [];
  let pgDir: string | null = null;
  const stop = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
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
      LOG_LEVEL: 'warn',
    };
    execFileSync(process.execPath, [CLI, 'migrate', 'up'], { env, stdio: 'ignore' });
    const created = JSON.parse(
      execFileSync(
        process.execPath,
        [CLI, 'clients', 'create', '--json', '--name', 'bench', '--grant-type', 'client_credentials', '--auth-method', 'client_secret_basic'],
        { env, encoding: 'utf8' },
      ),
    ) as { client: { client_id: string }; client_secret: string };
    const clientId = created.client.client_id;
    const { createHash } = await import('node:crypto');
    const secretHash = createHash('sha256').update(created.client_secret).digest('base64url');
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}`;
    const headers = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };
    const body = 'grant_type=client_credentials';

    const gatehousePort = await freePort();
    const gatehouse = spawn(process.execPath, [CLI, 'serve'], { env: { ...env, PORT: String(gatehousePort) }, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(gatehouse);
    await waitForReady(gatehousePort);

    const bare = spawn(process.execPath, [join(root, 'dist/bench/bare-server.js')], {
      env: { PATH: env.PATH, BARE_KEY_FILE: keyFile, BARE_ALG: ALG, BARE_KID: kid, BARE_CLIENT_ID: clientId, BARE_SECRET_HASH: secretHash, BARE_ISSUER: ISSUER, BARE_AUDIENCE: AUDIENCE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(bare);
    const barePort = await waitForPort(bare, /LISTENING (\d+)/);

    const sigs = await signaturesPerSec(pem, kid);
    const bareFigures = await load('bare endpoint (form + SHA-256 + sign)', barePort, headers, body);
    const gatehouseFigures = await load('Gatehouse POST /token client_credentials', gatehousePort, headers, body);
    report(sigs, bareFigures, gatehouseFigures);
  } finally {
    stop();
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

function report(sigs: number, bare: Figures, gh: Figures): void {
  const ratio = gh.tokensPerSec / bare.tokensPerSec;
  const rows = [bare, gh].map(
    (f) => `| ${f.name} | ${f.tokensPerSec.toFixed(0)} | ${f.p50} | ${f.p99} | ${f.errors} | ${(f.tokensPerSec / sigs).toFixed(2)} |`,
  );
  const md = `# Token endpoint benchmark

${new Date().toISOString()} · Node ${process.version} · ${CONNECTIONS} connections · ${DURATION} s · ${ALG} · Postgres (Gatehouse) · LOG_LEVEL=warn

Raw signing on one thread: ${sigs.toFixed(0)} signatures/s.

| endpoint | tokens/s | p50 ms | p99 ms | errors | tokens/s ÷ signatures/s |
|---|---:|---:|---:|---:|---:|
${rows.join('\n')}

**Gatehouse / bare: ${ratio.toFixed(2)}** (target ≥ 0.80, zero errors, p99 < 25 ms)
`;
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'token.md'), md);
  writeFileSync(
    join(out, 'token.json'),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, connections: CONNECTIONS, durationSec: DURATION, alg: ALG, signaturesPerSec: sigs, bare, gatehouse: gh, ratio }, null, 2)}\n`,
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
