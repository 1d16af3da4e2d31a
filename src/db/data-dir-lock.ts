import { hostname } from 'node:os';
import { join } from 'node:path';
import { readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { DomainError } from '../lib/errors.js';

/** The lock file's name inside DATA_DIR (PGlite ignores files it does not know). */
export const LOCK_FILE = 'gatehouse.lock';
/** How often a holder touches its lock, so a process in another PID namespace can tell it is alive. */
const HEARTBEAT_MS = 10_000;
/** A lock from another host (container) not touched for this long is stale: its holder is gone. */
const FOREIGN_STALE_MS = 30_000;
/** A lock file that is empty or unreadable this young is still being written by its holder. */
const WRITING_MS = 5_000;
/** A stale-lock takeover guard older than this was left by a process that died taking over. */
const TAKEOVER_STALE_MS = 10_000;

/** Lock files this process holds: opening the same directory twice in one process is refused too. */
const held = new Set<string>();

/** What a lock file says about its holder. */
interface Holder {
  pid: number;
  host: string;
  owner: string;
  since: string;
}

/** Another process has the embedded database open: PGlite is single-process, so this one must not. */
export class DataDirInUseError extends DomainError {
  constructor(shownAs: string, holder: Holder | undefined) {
    const who =
      holder === undefined
        ? 'another process'
        : `process ${holder.pid}${holder.host === hostname() ? '' : ` on ${holder.host}`} (${holder.owner})`;
    super(
      'conflict',
      `the embedded database in ${shownAs} is in use by ${who}; stop it, or use the admin API, or set DATABASE_URL to a Postgres both can share`,
    );
  }
}

/** A held lock on a data directory. */
export interface DataDirLock {
  /** Removes the lock file (if it is still ours) and stops its heartbeat. */
  release(): Promise<void>;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return undefined;
    return { pid: value.pid, host: value.host, owner: String(value.owner ?? 'gatehouse'), since: String(value.since) };
  } catch {
    return undefined;
  }
}

/** Whether a process with this id exists on this host (EPERM: it exists, under another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the lock a holder left still stands, judged by its PID on this host or its heartbeat elsewhere. */
function stillHeld(path: string, holder: Holder | undefined, ageMs: number): boolean {
  if (holder === undefined) return ageMs < WRITING_MS;
  if (holder.host !== hostname()) return ageMs < FOREIGN_STALE_MS;
  // Our own PID in a lock we do not hold was left by an earlier process with the same id (PID 1 in a
  // restarted container).
  if (holder.pid === process.pid) return held.has(path);
  return processAlive(holder.pid);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Removes a stale lock, unless it changed since it was judged stale: only one process at a time may do
 * this (an O_EXCL guard file), so two processes that both saw the stale lock cannot each remove it and
 * then also remove the other's new one.
 */
async function removeStale(path: string, staleText: string): Promise<void> {
  const guard = `${path}.takeover`;
  try {
    await writeFile(guard, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const guardStat = await stat(guard).catch(() => undefined);
    if (guardStat && Date.now() - guardStat.mtimeMs > TAKEOVER_STALE_MS) await rm(guard, { force: true });
    return sleep(50);
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === staleText) await rm(path, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

/**
 * Takes DATA_DIR's lock for this process, or throws DataDirInUseError naming the holder. The lock file
 * (`gatehouse.lock`: PID, host, command, start time) is created with O_EXCL, so of two processes racing
 * exactly one gets it. A stale lock (its PID dead on this host, or no heartbeat for 30 s from another
 * host or container sharing the directory) is taken over. `shownAs` is how the directory is named in the
 * message, `owner` what this process is (`gatehouse serve`).
 */
export async function lockDataDir(dir: string, shownAs: string, owner: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  const mine: Holder = { pid: process.pid, host: hostname(), owner, since: new Date().toISOString() };
  const text = JSON.stringify(mine);
  if (held.has(path)) throw new DataDirInUseError(shownAs, mine);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await writeFile(path, text, { flag: 'wx' });
      held.add(path);
      return holding(path, text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [found, info] = await Promise.all([
      readFile(path, 'utf8').catch(() => undefined),
      stat(path).catch(() => undefined),
    ]);
    // Gone in between: its holder released it; try again.
    if (found === undefined || info === undefined) continue;
    const holder = parseHolder(found);
    if (stillHeld(path, holder, Date.now() - info.mtimeMs)) throw new DataDirInUseError(shownAs, holder);
    await removeStale(path, found);
  }
  throw new DataDirInUseError(shownAs, undefined);
}

function holding(path: string, text: string): DataDirLock {
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return {
    async release() {
      clearInterval(heartbeat);
      if (!held.delete(path)) return;
      // Only our own lock: never one another process took over after judging ours stale.
      const now = await readFile(path, 'utf8').catch(() => undefined);
      if (now === text) await rm(path, { force: true });
    },
  };
}
