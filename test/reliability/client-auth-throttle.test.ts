import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { addressKey, ClientAuthThrottle, MAX_ENTRIES } from '../../src/services/clients/auth-throttle.js';
import { basic } from '../fixtures/clients.js';
import { testConfig, testDatabase } from '../helper.js';

/**
 * Issue #10: client secrets could be guessed without limit at /token, /introspect and /revoke. RFC 6749
 * §2.3.1 requires brute-force protection; failures are counted per (client, address), per address and per
 * client, and a throttled request gets 429 + Retry-After before its secret is checked.
 */

const ENV = {
  ISSUER: 'https://auth.example.com',
  RESOURCES: 'https://api.example.com',
  CLIENT_AUTH_FAILURE_WINDOW_SECONDS: '60',
  CLIENT_AUTH_MAX_FAILURES: '5',
  CLIENT_AUTH_MAX_FAILURES_PER_ADDRESS: '12',
  CLIENT_AUTH_MAX_FAILURES_PER_CLIENT: '20',
  // Metrics are on only with the admin listener configured (it is not started here).
  ADMIN_PORT: '4999',
  ADMIN_TOKEN: randomBytes(32).toString('base64url'),
};
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const ATTACKER = '203.0.113.7';
const CLIENT_HOST = '198.51.100.20';

interface Harness {
  app: FastifyInstance;
  /** Moves the app's clock forward. */
  advance: (seconds: number) => void;
}

async function harness(t: Tap.Test, env: Record<string, string> = {}): Promise<Harness> {
  let now = Date.now();
  const app = await buildApp(testConfig({ ...ENV, ...env }), {
    database: await testDatabase(),
    clock: () => new Date(now),
  });
  t.teardown(() => app.close());
  await app.ready();
  return { app, advance: (seconds) => (now += seconds * 1000) };
}

async function machine(app: FastifyInstance) {
  const { client, secret } = await app.clientAdmin.create({ name: 'Machine', grant_types: ['client_credentials'] });
  return { id: client.client_id, secret: secret! };
}

function token(app: FastifyInstance, id: string, secret: string, remoteAddress: string, headers = {}) {
  return app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress,
    headers: { ...FORM, authorization: basic(id, secret), ...headers },
    payload: 'grant_type=client_credentials',
  });
}

function wrong(): string {
  return randomBytes(32).toString('base64url');
}

t.test('many wrong secrets from one address get 429 + Retry-After; the right one elsewhere works', async (t) => {
  const { app, advance } = await harness(t);
  const c = await machine(app);
  for (let i = 0; i < 5; i++) {
    const res = await token(app, c.id, wrong(), ATTACKER);
    t.equal(res.statusCode, 401, `guess ${i + 1} is checked: invalid_client`);
    t.equal(res.json().error, 'invalid_client');
  }
  const refused = await token(app, c.id, wrong(), ATTACKER);
  t.equal(refused.statusCode, 429, refused.body);
  t.same(Object.keys(refused.json()).sort(), ['error', 'error_description'], 'the OAuth error JSON');
  t.equal(refused.json().error, 'temporarily_unavailable');
  t.equal(refused.headers['retry-after'], '60', 'the window opened by the first failure');
  t.equal(refused.headers['cache-control'], 'no-store');
  t.notOk(refused.headers['www-authenticate'], 'not an authentication failure');

  // The guesser learns nothing: the right secret from the throttled address is refused just the same.
  const rightButThrottled = await token(app, c.id, c.secret, ATTACKER);
  t.equal(rightButThrottled.statusCode, 429, 'refused before the secret is checked');

  // The client itself, from its own address, is not affected.
  const legit = await token(app, c.id, c.secret, CLIENT_HOST);
  t.equal(legit.statusCode, 200, legit.body);

  advance(30);
  const later = await token(app, c.id, wrong(), ATTACKER);
  t.equal(later.headers['retry-after'], '30', 'Retry-After counts down with the clock');
  advance(31);
  const recovered = await token(app, c.id, c.secret, ATTACKER);
  t.equal(recovered.statusCode, 200, 'after the window the address may try again');
});

t.test('spraying a client_id from many addresses does not lock out the client', async (t) => {
  const { app } = await harness(t);
  const c = await machine(app);
  t.equal((await token(app, c.id, c.secret, CLIENT_HOST)).statusCode, 200, 'the client has authenticated before');
  // 40 addresses, 3 guesses each: 120 failures against one client_id, far over the per-client ceiling (20).
  for (let host = 1; host <= 40; host++)
    for (let i = 0; i < 3; i++) {
      const res = await token(app, c.id, wrong(), `192.0.2.${host}`);
      t.not(res.statusCode, 500);
      if (res.statusCode === 200) t.fail('a wrong secret succeeded');
    }
  const fresh = await token(app, c.id, wrong(), '192.0.2.200');
  t.equal(fresh.statusCode, 429, 'a new address guessing that id hits the per-client ceiling');
  t.match(fresh.json().error_description, /too many failed client authentications/);
  const legit = await token(app, c.id, c.secret, CLIENT_HOST);
  t.equal(legit.statusCode, 200, 'the address the client really uses keeps working');
});

t.test('one address guessing many client_ids is refused past the per-address limit', async (t) => {
  const { app } = await harness(t);
  const c = await machine(app);
  t.equal((await token(app, c.id, c.secret, ATTACKER)).statusCode, 200, 'a client the address really uses');
  for (let i = 0; i < 12; i++)
    t.equal((await token(app, `guess-${i}`, wrong(), ATTACKER)).statusCode, 401, `unknown client ${i}`);
  const refused = await token(app, 'guess-next', wrong(), ATTACKER);
  t.equal(refused.statusCode, 429, 'the 13th id from that address is not even looked up');
  t.equal((await token(app, c.id, c.secret, ATTACKER)).statusCode, 200, 'its known client still works');
  t.equal((await token(app, 'guess-other', wrong(), CLIENT_HOST)).statusCode, 401, 'other addresses unaffected');
});

t.test('/introspect and /revoke are protected the same way; a success clears the pair', async (t) => {
  const { app } = await harness(t);
  for (const url of ['/introspect', '/revoke']) {
    // One client and address per endpoint: the counters are shared by the three endpoints.
    const c = await machine(app);
    const address = url === '/revoke' ? '192.0.2.99' : ATTACKER;
    const call = (secret: string) =>
      app.inject({
        method: 'POST',
        url,
        remoteAddress: address,
        headers: { ...FORM, authorization: basic(c.id, secret) },
        payload: 'token=abc',
      });
    for (let i = 0; i < 4; i++) t.equal((await call(wrong())).statusCode, 401, `${url} guess ${i + 1}`);
    t.equal((await call(c.secret)).statusCode, 200, `${url}: the right secret before the limit works`);
    for (let i = 0; i < 5; i++) t.equal((await call(wrong())).statusCode, 401, `${url}: counting starts again`);
    const refused = await call(wrong());
    t.equal(refused.statusCode, 429, `${url} refuses`);
    t.equal(refused.json().error, 'temporarily_unavailable');
    t.ok(Number(refused.headers['retry-after']) > 0);
  }
});

t.test('behind TRUST_PROXY the forwarded client address is counted, not the proxy', async (t) => {
  const { app } = await harness(t, { TRUST_PROXY: 'true' });
  const c = await machine(app);
  const proxy = '10.0.0.2';
  for (let i = 0; i < 5; i++) await token(app, c.id, wrong(), proxy, { 'x-forwarded-for': ATTACKER });
  t.equal((await token(app, c.id, wrong(), proxy, { 'x-forwarded-for': ATTACKER })).statusCode, 429);
  const other = await token(app, c.id, c.secret, proxy, { 'x-forwarded-for': CLIENT_HOST });
  t.equal(other.statusCode, 200, 'another client behind the same proxy is not throttled');
});

t.test('refusals and failures are counted in metrics', async (t) => {
  const { app } = await harness(t);
  const c = await machine(app);
  for (let i = 0; i < 8; i++) await token(app, c.id, wrong(), ATTACKER);
  const text = await app.metrics!.metrics();
  t.match(text, /^gatehouse_client_auth_failures_total\{endpoint="\/token"\} 5$/m);
  t.match(text, /^gatehouse_client_auth_throttled_total\{endpoint="\/token",limit="client_address"\} 3$/m);
  t.match(text, /^gatehouse_http_requests_total\{route="\/token",method="POST",status="429"\} 3$/m);
  t.notMatch(text, /status="500"/, 'no 500s');
});

t.test('CLIENT_AUTH_MAX_FAILURES=0 turns the throttle off', async (t) => {
  const { app } = await harness(t, { CLIENT_AUTH_MAX_FAILURES: '0' });
  const c = await machine(app);
  for (let i = 0; i < 30; i++) t.equal((await token(app, c.id, wrong(), ATTACKER)).statusCode, 401);
});

t.test('the throttle is on by default, with a bounded memory', async (t) => {
  const defaults = testConfig().clientAuthThrottle;
  t.same(defaults, { window: 300, maxPerClientAddress: 10, maxPerAddress: 50, maxPerClient: 500 });
  t.equal(MAX_ENTRIES, 10_000);
  t.throws(() => testConfig({ CLIENT_AUTH_MAX_FAILURES: '-1' }), /CLIENT_AUTH_MAX_FAILURES/);
});

t.test('an attacker spraying addresses and client ids cannot grow memory without bound', async (t) => {
  const throttle = new ClientAuthThrottle(testConfig().clientAuthThrottle, () => new Date());
  for (let i = 0; i < 3 * MAX_ENTRIES; i++) {
    const guard = throttle.guard(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '/token')!;
    guard.admit(`random-${i}`);
    guard.failed(`random-${i}`);
  }
  t.ok(throttle.size <= 4 * MAX_ENTRIES, `${throttle.size} entries after ${3 * MAX_ENTRIES} distinct failures`);
  // Eviction only loosens limits: a fresh guesser is still stopped.
  const guard = throttle.guard('203.0.113.9', '/token')!;
  for (let i = 0; i < 10; i++) guard.failed('victim');
  t.throws(() => guard.admit('victim'), { message: /too many failed client authentications/ });
});

t.test('addresses are counted as IPv4, or by their IPv6 /64', async (t) => {
  t.equal(addressKey('203.0.113.7'), '203.0.113.7');
  t.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7');
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
});
