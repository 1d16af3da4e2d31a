import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DataDirInUseError, LOCK_FILE, lockDataDir } from '../../src/db/data-dir-lock.js';
import { BASE_ENV } from '../helper.js';
import { migratedPgliteDataDir } from '../kit/database.js';
import { CLI, finished, run } from '../process.js';

/**
 * Issue #10: the embedded database's DATA_DIR lock (src/db/data-dir-lock.ts): exclusive, taken over from a
 * dead holder, standing for a live one elsewhere. serve beside the CLI: embedded-lock-serve.test.ts.
 */

t.test('a lock left by a process that died is taken over', async (t) => {
  const dataDir = await migratedPgliteDataDir(join(t.testdir(), 'pglite'));
  // A PID that surely existed and is now gone: a child that has exited.
  const dead = spawn(process.execPath, ['-e', '0']);
  await finished(dead);
  await writeFile(
    join(dataDir, LOCK_FILE),
    JSON.stringify({ pid: dead.pid, host: hostname(), owner: 'gatehouse serve', since: new Date().toISOString() }),
  );
  const res = await run([CLI, 'clients', 'list', '--json'], { ...BASE_ENV, DATA_DIR: dataDir });
  t.equal(res.code, 0, res.stderr);
  t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'taken over, then released');
});

t.test('the lock is exclusive, also within one process and between racers', async (t) => {
  const dir = t.testdir();
  const results = await Promise.allSettled([
    lockDataDir(dir, './x', 'gatehouse serve'),
    lockDataDir(dir, './x', 'gatehouse serve'),
  ]);
  const held = results.filter((r) => r.status === 'fulfilled');
  t.equal(held.length, 1, 'exactly one of two racers gets it');
  const lost = results.find((r) => r.status === 'rejected');
  t.type(lost?.reason, DataDirInUseError);
  t.match((lost?.reason as Error).message, `in use by process ${process.pid} (gatehouse serve)`);
  await held[0]!.value.release();
  const later = await lockDataDir(dir, './x', 'gatehouse migrate up');
  t.match(
    await readFile(join(dir, LOCK_FILE), 'utf8'),
    'gatehouse migrate up',
    'free again once released: the next holder is named',
  );
  await later.release();

  // A lock from another host (a container sharing the volume) stands while its heartbeat is fresh.
  await writeFile(
    join(dir, LOCK_FILE),
    JSON.stringify({ pid: 1, host: 'elsewhere', owner: 'gatehouse serve', since: new Date().toISOString() }),
  );
  await t.rejects(lockDataDir(dir, './x', 'gatehouse clients list'), {
    message: /in use by process 1 on elsewhere \(gatehouse serve\)/,
  });
});
