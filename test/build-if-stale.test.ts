import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const script = fileURLToPath(new URL('../scripts/build-if-stale.mjs', import.meta.url));
// Stands in for `npm run build`: counts its runs and writes the entry point tsc would.
const FAKE_BUILD = `node -e "const fs=require('fs');fs.mkdirSync('dist/src/cli',{recursive:true});fs.writeFileSync('dist/src/cli/main.js','');fs.appendFileSync('builds','x')"`;

function run(root: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [script, root], {
    encoding: 'utf8',
    env: { ...process.env, BUILD_COMMAND: FAKE_BUILD, ...env },
  });
}
const builds = (root: string) =>
  existsSync(join(root, 'builds')) ? readFileSync(join(root, 'builds'), 'utf8').length : 0;
/** Moves a file's modification time into the future, as an edit after the last build would. */
function touchLater(path: string, seconds: number) {
  const at = new Date(Date.now() + seconds * 1000);
  utimesSync(path, at, at);
}

t.test('npm start builds on a fresh clone, then only after a source changes', async (t) => {
  const root = t.testdir({ src: { 'a.ts': 'export {}' }, migrations: {}, 'tsconfig.json': '{}', 'package.json': '{}' });

  let res = run(root);
  t.equal(res.status, 0, res.stderr);
  t.match(res.stdout, /building \(first run\)/);
  t.equal(builds(root), 1, 'a fresh clone is built');

  res = run(root);
  t.match(res.stdout, /build is up to date/);
  t.equal(builds(root), 1, 'nothing changed: no build');

  touchLater(join(root, 'src', 'a.ts'), 5);
  res = run(root);
  t.match(res.stdout, /sources changed, building/);
  t.equal(builds(root), 2, 'an edited source is built');
  t.equal(run(root).status, 0);
  t.equal(builds(root), 2, 'and only once');

  mkdirSync(join(root, 'src', 'lib'));
  writeFileSync(join(root, 'src', 'lib', 'new.ts'), 'export {}');
  touchLater(join(root, 'src', 'lib', 'new.ts'), 10);
  run(root);
  t.equal(builds(root), 3, 'a new file is built');

  touchLater(join(root, 'package.json'), 15);
  run(root);
  t.equal(builds(root), 4, 'a dependency change is built');
});

t.test('a missing build output is rebuilt; a failed build stops the start and is retried next time', async (t) => {
  const root = t.testdir({ src: { 'a.ts': 'export {}' } });
  t.equal(run(root).status, 0);
  t.equal(builds(root), 1);

  const failed = run(root, { BUILD_COMMAND: 'node -e "process.exit(3)"' });
  t.equal(failed.status, 0, 'up to date: the failing build is not even run');

  touchLater(join(root, 'src', 'a.ts'), 5);
  const broken = run(root, { BUILD_COMMAND: 'node -e "process.exit(3)"' });
  t.equal(broken.status, 3, 'a failed build fails the start with its status');
  t.equal(run(root).status, 0);
  t.equal(builds(root), 2, 'the next start builds again');

  // A source saved while tsc runs is newer than what that build saw: the next start builds again.
  touchLater(join(root, 'src', 'a.ts'), 10);
  const savedDuringBuild = `${FAKE_BUILD} && node -e "const t=new Date(Date.now()+20000);require('fs').utimesSync('src/a.ts',t,t)"`;
  t.equal(run(root, { BUILD_COMMAND: savedDuringBuild }).status, 0);
  t.equal(builds(root), 3);
  t.equal(run(root).status, 0);
  t.equal(builds(root), 4, 'the edit made during the build is built');
});
