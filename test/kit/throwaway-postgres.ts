import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../fixtures/listen.js';
import { CLI } from '../process.js';

/**
 * A Postgres server of the test's own (as scripts/pg-throwaway.sh starts one), independent of
 * TEST_DATABASE_URL, that the test can stop, start, freeze and thaw: the reliability tests of issue #10.
 */

const run = promisify(execFile);

/** The newest installed Postgres's bin directory, or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(a) - Number(b));
  const last = versions.at(-1);
  return last === undefined ? undefined : join(root, last, 'bin');
}

/** initdb refuses to run as root, so the server runs as `postgres` in a directory it owns. */
const asRoot = process.getuid?.() === 0;
async function asPostgres(command: string, args: string[]): Promise<void> {
  if (asRoot) await run('runuser', ['-u', 'postgres', '--', command, ...args]);
  else await run(command, args);
}

export interface ThrowawayPostgres {
  url: string;
  /** `pg_ctl start`, waiting until it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl stop -m fast`: what a failover, a minor upgrade or a managed database's maintenance does. */
  stop(): Promise<void>;
  /**
   * SIGSTOP to the postmaster and every process it forked (pg_ctl cannot freeze a server): connections stay
   * open and nothing answers, as with a stalled disk, a paused VM or a network partition.
   */
  freeze(): void;
  /** SIGCONT to the same processes. */
  thaw(): void;
  /** Stops it (thawing first) and deletes its directory. */
  destroy(): Promise<void>;
}

/** Initialises and starts a throwaway Postgres on 127.0.0.1 with its own data directory. */
export async function startThrowawayPostgres(bin: string): Promise<ThrowawayPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off`;
  const start = () =>
    asPostgres(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      '-o',
      options,
      'start',
    ]);
  const stop = () => asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);

  let frozen: number[] = [];
  /** The postmaster (first line of postmaster.pid) and its children (by the parent pid in /proc). */
  const serverPids = (): number[] => {
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          // The fields after the command name, which is in parentheses and may hold spaces: state, ppid, …
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
        } catch {
          return false;
        }
      })
      .map(Number);
    return [postmaster, ...children];
  };
  const signal = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // Gone in between (a backend that ended): nothing to freeze or thaw.
      }
    }
  };

  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    freeze() {
      // The postmaster first, so it forks nothing new while its children are being stopped.
      frozen = serverPids();
      signal(frozen, 'SIGSTOP');
    },
    thaw() {
      signal(frozen, 'SIGCONT');
      frozen = [];
    },
    async destroy() {
      signal(frozen, 'SIGCONT');
      await stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A `gatehouse serve` process of the built CLI, listening on 127.0.0.1. */
export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Whether the process has exited (it must not, whatever Postgres does). */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Everything it printed (JSON log lines). */
  output(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** Spawns `gatehouse serve` (dist/, so build first) with exactly `env` plus PORT, and waits until /healthz answers. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  for (let waited = 0; ; waited += 100) {
    if (exit) throw new Error(`gatehouse serve exited at start: ${output}`);
    if (waited > 60_000) throw new Error(`gatehouse serve did not answer /healthz: ${output}`);
    const ok = await fetch(`${url}/healthz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    child,
    exited: () => exit,
    output: () => output,
    async stop() {
      if (exit) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
