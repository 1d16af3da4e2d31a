import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { readClientsFile } from '../src/services/clients/clients-file.js';
import { ConfigError, loadConfig, schemaLeaves } from '../src/config/index.js';
import { clientMetadataPolicy } from '../src/oauth/client-metadata.js';
import { buildTestApp } from './helper.js';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
const dockerfile = read('Dockerfile');
const compose = read('docker-compose.yml');
const composeDemo = read('docker-compose.demo.yml');
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
  t.notMatch(dockerfile, /^VOLUME/m, 'no declared volume: with Postgres, containers get no anonymous volume');
  const port = /PORT=(\d+)/.exec(dockerfile)?.[1];
  t.match(dockerfile, new RegExp(`^EXPOSE ${port}$`, 'm'), 'exposes the port it listens on');
  for (const [, src] of dockerfile.matchAll(/^COPY (?!--from)(\S+) /gm)) {
    t.ok(existsSync(new URL(src!, root)), `COPY source ${src} exists`);
  }
  for (const [, name] of dockerfile.matchAll(/^\s*(?:ENV )?([A-Z_]+)=/gm)) {
    t.ok(knownEnv.has(name!), `${name} is a configuration variable`);
  }
});

/** One service of docker-compose.yml, read line by line (the file keeps to plain two-space YAML). */
interface ComposeService {
  env: Map<string, string>;
  entrypoint: string[] | null;
  profiles: string[];
  volumes: string[];
}

/** `${NAME:-default}` as compose resolves it with NAME unset. */
function composeDefault(value: string): string {
  return value
    .replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')
    .replace(/^'(.*)'$/, '$1')
    .replace(/^"(.*)"$/, '$1');
}

function composeServices(text: string): Map<string, ComposeService> {
  const services = new Map<string, ComposeService>();
  const from = text.indexOf('\nservices:\n');
  const next = /\n[a-z]/.exec(text.slice(from + 1));
  const body = next ? text.slice(from, from + 1 + next.index) : text.slice(from);
  let current: ComposeService | undefined;
  let section = '';
  for (const line of body.split('\n')) {
    const name = /^ {2}([a-z][a-z0-9-]*):$/.exec(line);
    if (name) {
      current = { env: new Map(), entrypoint: null, profiles: [], volumes: [] };
      services.set(name[1]!, current);
      continue;
    }
    if (!current) continue;
    const key = /^ {4}([a-z_]+):(.*)$/.exec(line);
    if (key) {
      section = key[1]!;
      if (section === 'entrypoint') current.entrypoint = JSON.parse(key[2]!.trim()) as string[];
      if (section === 'profiles') current.profiles = JSON.parse(key[2]!.trim()) as string[];
      continue;
    }
    const env = /^ {6}([A-Z][A-Z0-9_]*): (.*)$/.exec(line);
    if (section === 'environment' && env) current.env.set(env[1]!, composeDefault(env[2]!.trim()));
    const volume = /^ {6}- (\S+)$/.exec(line);
    if (section === 'volumes' && volume) current.volumes.push(volume[1]!);
  }
  return services;
}

/** `docker compose -f base -f override`: environment entries merge by name, volumes add up. */
function mergeCompose(
  base: Map<string, ComposeService>,
  override: Map<string, ComposeService>,
): Map<string, ComposeService> {
  const merged = new Map(base);
  for (const [name, o] of override) {
    const b = base.get(name);
    merged.set(
      name,
      b
        ? {
            env: new Map([...b.env, ...o.env]),
            entrypoint: o.entrypoint ?? b.entrypoint,
            profiles: o.profiles.length > 0 ? o.profiles : b.profiles,
            volumes: [...b.volumes, ...o.volumes],
          }
        : o,
    );
  }
  return merged;
}

const services = composeServices(compose);
/** The demo: docker-compose.demo.yml on top of docker-compose.yml. */
const demoServices = mergeCompose(services, composeServices(composeDemo));
/** Services running an example rather than Gatehouse: `node dist/examples/<name>/server.js`. */
const exampleServices = [...demoServices].filter(([, s]) => s.entrypoint?.[0] === 'node');

t.test('docker-compose.yml uses only real settings and commands', async (t) => {
  const envNames = [...demoServices].filter(([, s]) => s.entrypoint === null).flatMap(([, s]) => [...s.env.keys()]);
  t.ok(envNames.length > 0);
  for (const name of envNames.filter((n) => !n.startsWith('POSTGRES_')))
    t.ok(knownEnv.has(name), `${name} is a configuration variable`);
  t.match(compose, /command: \["migrate", "up"\]/, 'the one-shot migrate service uses the CLI');
  t.match(compose, /pg_isready/, 'Postgres has a healthcheck');
  t.match(compose, /condition: service_healthy/);
  t.match(compose, /condition: service_completed_successfully/);
  t.match(compose, /"127\.0\.0\.1:4000:4000"/, 'published on loopback only');
});

t.test('plain `docker compose up` runs Postgres, migrate and a Gatehouse wired to nothing', async (t) => {
  t.same([...services.keys()].sort(), ['gatehouse', 'migrate', 'postgres'], 'no demo services');
  const gatehouse = services.get('gatehouse')!;
  for (const name of ['SIGN_IN_URL', 'HOST_ID', 'HANDSHAKE_SECRET', 'SCOPES', 'RESOURCES'])
    t.equal(gatehouse.env.get(name), '', `${name} is passed through from the environment, unset by default`);
  t.notOk(gatehouse.env.has('CLIENTS_FILE'), 'no demo client is registered');
  t.same(gatehouse.volumes, [], 'nothing of the demo is mounted');
  t.notMatch(compose, /localhost:400[1-3]|demo-host|demo-client/, 'nothing points at the demo apps');
  const { config } = loadConfig(Object.fromEntries(gatehouse.env));
  t.equal(config.handshake.signInUrl, '', 'it starts (in development) with sign-in not configured');
});

t.test('the demo file runs examples the image builds, wired to Gatehouse consistently', async (t) => {
  t.same(exampleServices.map(([name]) => name).sort(), ['demo-client', 'host-app', 'resource-server']);
  t.match(dockerfile, /^COPY examples \.\/examples$/m, 'the build stage compiles the examples');
  for (const [name, service] of exampleServices) {
    t.same(service.profiles, [], `${name} runs whenever the demo file is used`);
    t.notOk(services.has(name), `${name} is not in docker-compose.yml`);
    const script = service.entrypoint![1]!;
    t.match(script, /^dist\/examples\/[a-z-]+\/server\.js$/, `${name} runs an example's server`);
    t.ok(existsSync(new URL(script, root)), `${name}: the build produced ${script}`);
    const source = read(script.replace(/^dist\//, '').replace(/\.js$/, '.ts'));
    for (const envName of service.env.keys())
      t.match(source, new RegExp(`process\\.env\\.${envName}\\b`), `${name}: ${envName} is read by its server`);
    t.equal(service.env.get('HOST'), '0.0.0.0', `${name} listens on the container network`);
    t.match(
      composeDemo,
      new RegExp(`"127\\.0\\.0\\.1:${service.env.get('PORT')}:${service.env.get('PORT')}"`),
      `${name} is published on loopback only`,
    );
  }

  const gatehouse = demoServices.get('gatehouse')!;
  const host = demoServices.get('host-app')!;
  const api = demoServices.get('resource-server')!;
  const client = demoServices.get('demo-client')!;
  const issuer = composeDefault('${ISSUER:-http://localhost:4000}');
  t.equal(gatehouse.env.get('ISSUER'), issuer);
  for (const service of [host, api, client])
    t.equal(service.env.get('GATEHOUSE_ISSUER'), issuer, 'the examples know the issuer');
  t.equal(host.env.get('HOST_ID'), gatehouse.env.get('HOST_ID'), 'one HOST_ID');
  t.equal(host.env.get('HANDSHAKE_SECRET'), gatehouse.env.get('HANDSHAKE_SECRET'), 'one handshake secret');
  t.equal(
    gatehouse.env.get('SIGN_IN_URL'),
    `http://localhost:${host.env.get('PORT')}/login`,
    'Gatehouse sends sign-ins to the host app',
  );
  t.equal(api.env.get('RESOURCE_URL'), gatehouse.env.get('RESOURCES'), "the API's resource is Gatehouse's resource");
  t.equal(client.env.get('RESOURCE_URL'), api.env.get('RESOURCE_URL'), 'the client asks for that resource');
  t.equal(
    api.env.get('JWKS_URI'),
    'http://gatehouse:4000/.well-known/jwks.json',
    'the API reaches the keys over the compose network',
  );
  // With the operator's own secrets in place of the published local-only ones (issue #10).
  const config = loadConfig({
    ...Object.fromEntries(gatehouse.env),
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://u@db/x',
    KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
    HANDSHAKE_SECRET: randomBytes(32).toString('base64url'),
  }).config;
  t.equal(
    config.handshake.signInUrl,
    gatehouse.env.get('SIGN_IN_URL'),
    "Gatehouse's demo settings pass its production checks",
  );

  const mount = gatehouse.volumes.find((v) => v.endsWith(`:${gatehouse.env.get('CLIENTS_FILE')}:ro`));
  t.ok(mount, 'the clients file is mounted read-only where CLIENTS_FILE points');
  const clients = await readClientsFile(
    fileURLToPath(new URL(mount!.split(':')[0]!, root)),
    clientMetadataPolicy(config),
  );
  const demo = clients.find((c) => c.clientId === client.env.get('CLIENT_ID'));
  t.ok(demo, 'the demo client is registered');
  t.ok(demo!.metadata.redirect_uris.includes(client.env.get('REDIRECT_URI')!), 'with the redirect URI the client uses');
  t.equal(demo!.metadata.token_endpoint_auth_method, 'none', 'as a public client');
  t.ok(
    demo!.metadata.post_logout_redirect_uris.includes(new URL('/signed-out', client.env.get('REDIRECT_URI')).href),
    '"Sign out everywhere" returns to a registered post-logout URI',
  );
  t.match(client.env.get('SCOPE'), /\bopenid\b/, 'the demo client is an OpenID Connect client');
});

/** The example Kubernetes manifests, every document of every file in deploy/kubernetes/. */
interface K8sEnv {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface K8sContainer {
  args: string[];
  env: K8sEnv[];
  ports?: Array<{ name: string; containerPort: number }>;
  startupProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
}
interface K8sPodSpec {
  containers: K8sContainer[];
}
interface K8sDoc {
  kind: string;
  metadata: { name: string };
  spec: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: { metadata: { labels: Record<string, string> }; spec: K8sPodSpec };
  };
}
const manifests: K8sDoc[] = readdirSync(new URL('deploy/kubernetes', root))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(read(`deploy/kubernetes/${f}`)).map((d) => d.toJS() as K8sDoc));
const SECRET_ENV = ['DATABASE_URL', 'KEY_ENCRYPTION_SECRET', 'HANDSHAKE_SECRET', 'ADMIN_TOKEN'];

function only(kind: string): K8sDoc {
  const found = manifests.filter((m) => m.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

t.test('the Kubernetes examples set only real settings, secrets by reference, with real commands', async (t) => {
  t.same(manifests.map((m) => m.kind).sort(), ['Deployment', 'Job', 'PodDisruptionBudget', 'Service']);
  for (const workload of [only('Deployment'), only('Job')]) {
    const [container] = workload.spec.template!.spec.containers;
    for (const { name, value, valueFrom } of container!.env) {
      t.ok(knownEnv.has(name), `${workload.kind}: ${name} is a configuration variable`);
      if (SECRET_ENV.includes(name)) {
        t.equal(value, undefined, `${workload.kind}: ${name} is not written in the manifest`);
        t.same(valueFrom?.secretKeyRef, { name: 'gatehouse', key: name }, `${workload.kind}: ${name} from the Secret`);
      }
    }
  }
  const deployment = only('Deployment');
  const [gatehouse] = deployment.spec.template!.spec.containers;
  const env = new Map(gatehouse!.env.map((e) => [e.name, e.value ?? '']));
  t.same(gatehouse!.args, ['serve']);
  t.equal(env.get('AUTO_MIGRATE'), 'false', 'the Deployment leaves migrations to the Job');
  t.same(only('Job').spec.template!.spec.containers[0]!.args, ['migrate', 'up'], 'the Job runs the CLI migration');
  const ports = new Map(gatehouse!.ports!.map((p) => [p.name, p.containerPort]));
  t.equal(String(ports.get('http')), env.get('PORT'), 'the http port is where Gatehouse listens');
  t.equal(String(ports.get('admin')), env.get('ADMIN_PORT'), 'the admin port is where the admin listener is');

  // With the Secret's values in place, the Deployment's settings pass production's checks.
  const secrets = Object.fromEntries(SECRET_ENV.map((n) => [n, randomBytes(32).toString('base64url')]));
  const { config } = loadConfig({
    ...Object.fromEntries(env),
    ...secrets,
    DATABASE_URL: `postgres://gatehouse:${secrets.DATABASE_URL}@postgres.internal/gatehouse`,
  });
  t.equal(config.database.autoMigrate, false);

  // The probes hit endpoints Gatehouse serves: liveness never needs the database, readiness does.
  t.equal(gatehouse!.livenessProbe!.httpGet.path, '/healthz');
  t.equal(gatehouse!.startupProbe!.httpGet.path, '/healthz');
  t.equal(gatehouse!.readinessProbe!.httpGet.path, '/readyz');
  const app = await buildTestApp(t);
  for (const probe of [gatehouse!.livenessProbe!, gatehouse!.readinessProbe!]) {
    t.equal(probe.httpGet.port, 'http');
    t.equal((await app.inject({ method: 'GET', url: probe.httpGet.path })).statusCode, 200, probe.httpGet.path);
  }

  const labels = deployment.spec.template!.metadata.labels;
  t.same(deployment.spec.selector!.matchLabels, labels, 'the Deployment selects its pods');
  t.match(labels, only('Service').spec.selector!, 'the Service selects them');
  t.same(only('PodDisruptionBudget').spec.selector!.matchLabels, labels, 'the PodDisruptionBudget covers them');
});

t.test('README shows the start and test commands that package.json defines', async (t) => {
  const readme = read('README.md');
  t.match(readme, /npm ci && npm start/);
  t.match(readme, /npm ci && npm test/);
  t.ok(pkg.scripts.start && pkg.scripts.test);
  t.equal(pkg.scripts.prestart, 'node scripts/build-if-stale.mjs', 'npm start builds first when sources changed');
});

/** Every file under a repository folder, as paths from the root. */
function filesUnder(folder: string): string[] {
  return readdirSync(new URL(folder, root)).flatMap((name) => {
    const path = `${folder}/${name}`;
    return statSync(new URL(path, root)).isDirectory() ? filesUnder(path) : [path];
  });
}

/** A literal secret-looking value: not a `$VAR`, a `$(command)`, a `<placeholder>` or an expression. */
const VALUE = `([A-Za-z0-9+/=._~][A-Za-z0-9+/=._~-]{5,})(?=["'\`\\s,}]|$)`;
const SECRET_SETTINGS = [
  // ${NAME:-default} (compose, shell)
  new RegExp(`\\$\\{([A-Z][A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD)):-${VALUE}`, 'gm'),
  // NAME=value, NAME: value (env files, compose, shell, docs)
  new RegExp(`\\b([A-Z][A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD))\\s*[:=]\\s*["']?${VALUE}`, 'gm'),
  // "client_secret": "value" (clients files, JSON examples)
  new RegExp(`"([a-z_]*(?:secret|token|password))"\\s*:\\s*"${VALUE}`, 'gm'),
];

/** The secret settings the repository publishes: docker-compose.yml, README.md, docs/*.md and examples/. */
function publishedSecretSettings(): Array<{ file: string; name: string; value: string }> {
  const files = [
    'docker-compose.yml',
    'docker-compose.demo.yml',
    'README.md',
    ...readdirSync(new URL('deploy/kubernetes', root)).map((f) => `deploy/kubernetes/${f}`),
    ...readdirSync(new URL('docs', root))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    ...filesUnder('examples'),
  ];
  return files.flatMap((file) => {
    const text = read(file);
    return SECRET_SETTINGS.flatMap((pattern) =>
      [...text.matchAll(pattern)].map((m) => ({ file, name: m[1]!, value: m[2]! })),
    );
  });
}

function productionProblems(env: Record<string, string>): string[] {
  try {
    loadConfig({
      NODE_ENV: 'production',
      ISSUER: 'https://auth.example.com',
      KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
      ...env,
    });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

t.test('production refuses every secret value the repository publishes, in every secret setting', async (t) => {
  const found = publishedSecretSettings();
  const names = new Set(found.map((f) => f.name));
  // The scan itself works: it sees the compose file's local-only defaults.
  for (const name of ['KEY_ENCRYPTION_SECRET', 'HANDSHAKE_SECRET', 'POSTGRES_PASSWORD'])
    t.ok(names.has(name), `the scan finds ${name} in the compose files`);
  for (const { file, name, value } of found) {
    const where = `${name} from ${file}`;
    for (const variable of ['KEY_ENCRYPTION_SECRET', 'HANDSHAKE_SECRET', 'DCR_INITIAL_ACCESS_TOKEN', 'ADMIN_TOKEN']) {
      const env: Record<string, string> = { [variable]: value, DCR_ENABLED: 'true', ADMIN_PORT: '4999' };
      if (variable !== 'ADMIN_TOKEN') env.ADMIN_TOKEN = randomBytes(32).toString('base64url');
      t.ok(
        productionProblems(env).some((p) => p.startsWith(`${variable}: `)),
        `${where} is refused as ${variable}`,
      );
    }
    const databaseUrl = `postgres://gatehouse:${encodeURIComponent(value)}@db.example.com/gatehouse`;
    t.ok(
      productionProblems({ DATABASE_URL: databaseUrl }).some((p) => p.startsWith('DATABASE_URL: ')),
      `${where} is refused as the DATABASE_URL password`,
    );
  }
});

t.test('docker-compose.yml says its defaults are local-only, and production refuses them as they are', async (t) => {
  t.match(compose, /^# LOCAL USE ONLY\./m, 'a warning at the top');
  t.match(composeDemo, /^# LOCAL USE ONLY/m, 'and at the top of the demo file');
  const gatehouse = demoServices.get('gatehouse')!;
  for (const name of ['KEY_ENCRYPTION_SECRET', 'HANDSHAKE_SECRET'])
    t.match(gatehouse.env.get(name), /^local-only-/, `${name}'s default says it is local-only`);
  t.match(gatehouse.env.get('DATABASE_URL'), /:gatehouse-local-only@/);
  t.equal(gatehouse.env.get('NODE_ENV'), 'development', 'the defaults run outside production');
  t.equal(services.get('migrate')!.env.get('NODE_ENV'), 'development');
  const problems = productionProblems({ ...Object.fromEntries(gatehouse.env), NODE_ENV: 'production' });
  t.match(problems.join('\n'), /^KEY_ENCRYPTION_SECRET: is a value published in the Gatehouse repository/m);
  t.match(problems.join('\n'), /^HANDSHAKE_SECRET: is a value published in the Gatehouse repository/m);
  t.match(problems.join('\n'), /^DATABASE_URL: its password is a value published/m);
  // And in development they start, as `docker compose up` needs.
  t.doesNotThrow(() => loadConfig(Object.fromEntries(gatehouse.env)));
});
