#!/usr/bin/env node
// `npm start` and `npm run demo` compile first, but only when a source changed since the last build:
// a full `tsc` takes tens of seconds on a small machine, and a start that repeats it every time makes a
// restart slow for nothing. Plain JavaScript, so it runs before anything is compiled.
//   node scripts/build-if-stale.mjs [root]      (BUILD_COMMAND overrides `npm run build`, for its test)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? process.cwd();
const INPUTS = [
  'src',
  'migrations',
  'bench',
  'scripts',
  'examples',
  'tsconfig.json',
  'package.json',
  'package-lock.json',
];
const STAMP = join(root, 'dist', '.build-stamp');
const ENTRY = join(root, 'dist', 'src', 'cli', 'main.js');

/** The newest modification time under a path (a directory's own time moves when a file is added or removed). */
function newest(path) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let max = stat.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry !== 'node_modules') max = Math.max(max, newest(join(path, entry)));
  }
  return max;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

const built = mtime(ENTRY) === 0 ? 0 : mtime(STAMP);
const sources = Math.max(...INPUTS.map((input) => newest(join(root, input))));
if (built !== 0 && built >= sources) {
  console.log('gatehouse: build is up to date (dist/)');
  process.exit(0);
}
console.log(built === 0 ? 'gatehouse: building (first run)…' : 'gatehouse: sources changed, building…');
const command = process.env.BUILD_COMMAND ?? 'npm run build';
const result = spawnSync(command, { cwd: root, stdio: 'inherit', shell: true });
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(STAMP, `${new Date().toISOString()}\n`);
// The stamp says which sources this build saw: just past the newest of them (Date keeps whole
// milliseconds, mtimes have fractions). A file saved while tsc ran is newer, so the next start builds again.
const at = new Date(Math.ceil(sources) + 1);
utimesSync(STAMP, at, at);
