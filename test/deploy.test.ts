import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { schemaLeaves } from '../src/config.js';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
const dockerfile = read('Dockerfile');
const compose = read('docker-compose.yml');
const knownEnv = new Set(schemaLeaves().flatMap((l) => [l.env, `${l.env}_FILE`]));

t.test('the Dockerfile runs what the build produces and the tests exercise', async (t) => {
  t.match(dockerfile, /^RUN npm run build$/m, 'the image builds with the same npm script as CI');
  t.match(dockerfile, /^RUN npm ci --omit=dev/m, 'the runtime stage has production dependencies only');
  const link = /ln -s \/app\/(\S+) \/usr\/local\/bin\/gatehouse/.exec(dockerfile);
  t.ok(link, 'gatehouse is on PATH');
  t.equal(link![1], pkg.bin.gatehouse, 'the entrypoint is the package bin');
  t.ok(existsSync(new URL(pkg.bin.gatehouse!, root)), 'and the build produced it');
  t.match(dockerfile, /^ENTRYPOINT \["gatehouse"\]$/m);
  t.match(dockerfile, /^CMD \["serve"\]$/m);
  t.match(dockerfile, /^USER node$/m, 'runs as a non-root user');
  t.match(dockerfile, /NODE_ENV=production/);
  t.match(dockerfile, /^HEALTHCHECK .*\n.*\/healthz/m);
  t.notMatch(dockerfile.replace(/^#.*$/gm, ''), /curl|wget/, 'no curl in the image');
  const port = /PORT=(\d+)/.exec(dockerfile)?.[1];
  t.match(dockerfile, new RegExp(`^EXPOSE ${port}$`, 'm'), 'exposes the port it listens on');
  for (const [, src] of dockerfile.matchAll(/^COPY (?!--from)(\S+) /gm)) {
    t.ok(existsSync(new URL(src!, root)), `COPY source ${src} exists`);
  }
  for (const [, name] of dockerfile.matchAll(/^\s*(?:ENV )?([A-Z_]+)=/gm)) {
    t.ok(knownEnv.has(name!), `${name} is a configuration variable`);
  }
});

t.test('docker-compose.yml uses only real settings and commands', async (t) => {
  const envNames = [...compose.matchAll(/^ {6}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
  t.ok(envNames.length > 0);
  for (const name of envNames.filter((n) => !n.startsWith('POSTGRES_'))) t.ok(knownEnv.has(name), `${name} is a configuration variable`);
  t.match(compose, /command: \["migrate", "up"\]/, 'the one-shot migrate service uses the CLI');
  t.match(compose, /pg_isready/, 'Postgres has a healthcheck');
  t.match(compose, /condition: service_healthy/);
  t.match(compose, /condition: service_completed_successfully/);
  t.match(compose, /"127\.0\.0\.1:4000:4000"/, 'published on loopback only');
});

t.test('README shows the start and test commands that package.json defines', async (t) => {
  const readme = read('README.md');
  t.match(readme, /npm ci && npm start/);
  t.match(readme, /npm ci && npm test/);
  t.ok(pkg.scripts.start && pkg.scripts.test);
  t.match(pkg.scripts.prestart, /npm run build/, 'npm start builds first, on a fresh clone');
});
