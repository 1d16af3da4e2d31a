import t from 'tap';
import { buildApp } from '../src/app.js';
import { openDatabase } from '../src/db/connect.js';
import { buildTestApp, testConfig } from './helper.js';

t.test('GET /healthz answers while the process lives', async (t) => {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { status: 'ok' });
  t.equal(res.headers['cache-control'], 'no-store');
  t.ok(res.headers['x-request-id'], 'every response names its request id');
});

t.test('GET /readyz is 200 when the database is reachable and migrations are current', async (t) => {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 200);
  t.match(res.json(), { status: 'ready', checks: { database: 'ok', migrations: 'ok' } });
});

t.test('GET /readyz is 503 with a reason when the database is unreachable', async (t) => {
  // Nothing listens on port 1: connections are refused. The handle is opened by the test, so the app
  // starts without waiting for Postgres (that wait is the next test's) and reports it in readiness.
  const config = testConfig({ DATABASE_URL: 'postgres://gatehouse@127.0.0.1:1/none', AUTO_MIGRATE: 'false' });
  const database = await openDatabase(config);
  t.teardown(() => database.close());
  const app = await buildApp(config, { database });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503);
  const body = res.json();
  t.equal(body.status, 'not_ready');
  t.match(body.checks.database, /^database unreachable/);
  t.equal(body.checks.migrations, 'not checked');
  const live = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(live.statusCode, 200, 'liveness does not depend on the database');
});

t.test(
  'a Postgres unreachable at start: the start gives up after DATABASE_STARTUP_WAIT_SECONDS, naming DATABASE_URL',
  async (t) => {
    const config = testConfig({
      DATABASE_URL: 'postgres://gatehouse:hunter2-not-logged@127.0.0.1:1/none',
      AUTO_MIGRATE: 'false',
      DATABASE_STARTUP_WAIT_SECONDS: '0',
    });
    const err = await buildApp(config).then(
      () => null,
      (e: unknown) => e as Error,
    );
    t.ok(err, 'the start fails rather than serving without its database');
    t.match(err?.message, /^cannot reach Postgres at 127\.0\.0\.1:1\/none \(DATABASE_URL\)/);
    t.notMatch(err?.message, /hunter2/, 'never the password');
  },
);

t.test('GET /readyz is 503 when migrations are pending', async (t) => {
  // A fresh schema that nothing has migrated.
  const config = testConfig({ AUTO_MIGRATE: 'false', DATABASE_SCHEMA: `pending_${Date.now()}` });
  const database = await openDatabase(config);
  t.teardown(() => database.close());
  const app = await buildApp(config, { database });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503);
  t.match(res.json().checks.migrations, /migration\(s\) pending: 2026-11-22T0001_clients_and_signing_keys/);
});

t.test('GET /readyz turns 503 when the database goes away after start', async (t) => {
  const config = testConfig({ DATA_DIR: 'memory://', DATABASE_URL: '' });
  const database = await openDatabase({ database: { ...config.database, url: '', dataDir: 'memory://' } });
  const app = await buildApp(config, { database });
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  await database.close();
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503);
  t.match(res.json().checks.database, /^database unreachable/);
});
