#!/usr/bin/env node
// Start-up timing: how long from spawning `gatehouse serve` until it logs that it is ready (and a few CLI
// commands' wall time), for one or more builds, interleaved round by round so a machine whose load changes
// hurts every build alike. Prints each run and the median per scenario and build.
//   node scripts/startup-timing.mjs [--rounds 5] [--node PATH] [--pg postgres://...] DIST [DIST...]
// DIST is a build's dist/ directory (dist/src/cli/main.js inside). Without --pg the Postgres scenarios
// are skipped. Plain JavaScript: it measures builds, it is not one.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '5' },
    node: { type: 'string', default: process.execPath },
    pg: { type: 'string' },
    only: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const builds = positionals.map((p) => resolve(p));
if (builds.length === 0) {
  process.stderr.write('usage: startup-timing.mjs [--rounds N] [--node PATH] [--pg URL] DIST [DIST...]\n');
  process.exit(2);
}

const BASE_ENV = {
  PATH: process.env.PATH ?? '',
  LOG_LEVEL: 'info',
  PORT: '0',
  KEY_ENCRYPTION_SECRET: 'startup-timing-key-encryption-secret-0123456789',
};

/** Runs the CLI until `ready` matches a stdout line (then SIGTERM) or it exits; resolves to milliseconds. */
function timed(dist, args, env, ready) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(values.node, [join(dist, 'src/cli/main.js'), ...args], {
      env: { ...BASE_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let elapsed = null;
    child.stdout.on('data', (d) => {
      out += d.toString();
      if (ready && elapsed === null && ready.test(out)) {
        elapsed = performance.now() - started;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d) => (err += d.toString()));
    child.on('exit', (code) => {
      if (!ready) elapsed = performance.now() - started;
      if (elapsed === null || (!ready && code !== 0))
        reject(new Error(`${args.join(' ')} exited ${code} without being ready:\n${out}\n${err}`));
      else resolvePromise(elapsed);
    });
  });
}

const READY = /Gatehouse ready/;
const work = mkdtempSync(join(tmpdir(), 'gatehouse-startup-'));
// A migrated embedded database with its signing key per build (an older build refuses data a newer one
// has migrated further), made once.
const seededOf = (dist) => join(work, `seeded-${builds.indexOf(dist)}`);
for (const dist of builds) await timed(dist, ['serve'], { DATA_DIR: seededOf(dist) }, READY);

const schema = `startup_${process.pid}`;
const scenarios = [
  ['serve, embedded, existing data', (dist) => timed(dist, ['serve'], { DATA_DIR: copyOf(seededOf(dist)) }, READY)],
  ['serve, embedded, first start', (dist) => timed(dist, ['serve'], { DATA_DIR: join(work, fresh()) }, READY)],
  ['clients list, embedded', (dist) => timed(dist, ['clients', 'list'], { DATA_DIR: seededOf(dist) })],
  [
    '--version (help before it existed)',
    (dist) => timed(dist, ['--version'], {}).catch(() => timed(dist, ['help'], {})),
  ],
];
if (values.pg) {
  // A schema per build: an older build refuses a schema a newer one has migrated further.
  const pg = (dist) => ({ DATABASE_URL: values.pg, DATABASE_SCHEMA: `${schema}_${builds.indexOf(dist)}` });
  for (const dist of builds) await timed(dist, ['serve'], pg(dist), READY);
  scenarios.unshift(['serve, Postgres, migrated', (dist) => timed(dist, ['serve'], pg(dist), READY)]);
  scenarios.push(['clients list, Postgres', (dist) => timed(dist, ['clients', 'list'], pg(dist))]);
}

let n = 0;
function fresh() {
  return `fresh-${n++}`;
}
function copyOf(dir) {
  const target = join(work, fresh());
  cpSync(dir, target, { recursive: true });
  return target;
}

const selected = values.only ? scenarios.filter(([name]) => name.includes(values.only)) : scenarios;
const results = new Map();
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of selected) {
    for (const dist of builds) {
      const ms = await run(dist);
      const key = `${name} | ${dist}`;
      results.set(key, [...(results.get(key) ?? []), ms]);
      process.stderr.write(`round ${round + 1}: ${key}: ${ms.toFixed(0)} ms\n`);
    }
  }
}
rmSync(work, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
process.stdout.write(`node ${values.node}, ${rounds} rounds, medians (all runs):\n`);
for (const [key, xs] of results)
  process.stdout.write(`${key}: ${median(xs).toFixed(0)} ms  (${xs.map((x) => x.toFixed(0)).join(', ')})\n`);
if (values.pg) process.stdout.write(`(Postgres schemas ${schema}_N left in place; drop them when done)\n`);
