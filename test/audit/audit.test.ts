import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import t from 'tap';
import { buildAdminApp } from '../../src/admin-app.js';
import { buildApp } from '../../src/app.js';
import { sweepExpired } from '../../src/services/janitor.js';
import {
  type AuditEventFilter,
  auditEventsQuery,
  insertAuditEvents,
} from '../../src/repositories/audit-event.repository.js';
import { answerLoginRequest, HANDSHAKE_ENV } from '../fixtures/host.js';
import { Browser, pathOf, pkce, register, token } from '../fixtures/registration.js';
import { buildTestApp, testConfig, testDatabase } from '../helper.js';
import { TEST_SCHEMA } from '../kit/database.js';
import { ISSUER } from '../kit/issuer.js';

const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };
const RESOURCE = 'https://mcp.example.com/mcp';
const REDIRECT = 'http://127.0.0.1:53123/callback';
const ENV = {
  ...HANDSHAKE_ENV,
  DCR_ENABLED: 'true',
  SCOPES: '{"read":"Read your data","write":"Change your data"}',
  RESOURCES: RESOURCE,
  ADMIN_PORT: '4999',
  ADMIN_TOKEN,
  // A second use of a rotated refresh token is reuse at once (no retry window).
  REFRESH_TOKEN_GRACE_SECONDS: '0',
};

interface AuditRow {
  id: string;
  occurred_at: string;
  type: string;
  subject: string | null;
  client_id: string | null;
  actor: string;
  address: string | null;
  details: Record<string, unknown>;
}

type Logs = Array<Record<string, unknown>>;

async function setup(
  t: Tap.Test,
  env: Record<string, string> = {},
): Promise<{ app: FastifyInstance; admin: FastifyInstance; logs: Logs }> {
  const logs: Logs = [];
  const app = await buildTestApp(t, { ...ENV, LOG_LEVEL: 'info', ...env }, { logs });
  const admin = await buildAdminApp(app.config, app);
  t.teardown(() => admin.close());
  await admin.ready();
  return { app, admin, logs };
}

/** Every audit event the admin API returns for a query, following next_cursor to the end. */
async function allEvents(app: FastifyInstance, admin: FastifyInstance, query: Record<string, string> = {}) {
  await app.audit.flush();
  const events: AuditRow[] = [];
  let cursor: string | null = null;
  do {
    const q: URLSearchParams = new URLSearchParams({ limit: '500', ...query, ...(cursor ? { cursor } : {}) });
    const res: LightMyRequestResponse = await admin.inject({
      method: 'GET',
      url: `/admin/audit-events?${q}`,
      headers: AUTH,
    });
    if (res.statusCode !== 200) throw new Error(`audit-events: ${res.statusCode} ${res.body}`);
    const page: { events: AuditRow[]; next_cursor: string | null } = res.json();
    events.push(...page.events);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return events;
}

/** The audit payloads in the log: `audit` lines, and the token endpoint's request lines that carry one. */
function auditLines(logs: Logs): Array<Record<string, unknown>> {
  return logs.filter((line) => line.audit !== undefined).map((line) => line.audit as Record<string, unknown>);
}

function one(t: Tap.Test, events: AuditRow[], type: string, match: Partial<AuditRow> = {}): AuditRow | undefined {
  const found = events.filter(
    (e) => e.type === type && Object.entries(match).every(([k, v]) => e[k as keyof AuditRow] === v),
  );
  t.ok(found.length > 0, `${type} is recorded${Object.keys(match).length ? ` (${JSON.stringify(match)})` : ''}`);
  return found[0];
}

/** authorize → host sign-in (as `sub`) → consent page → the decision; the redirect, the login_response sent. */
async function flow(
  browser: Browser,
  clientId: string,
  challenge: string,
  sub: string,
  decision: 'allow' | 'deny',
  extra: Record<string, string> = {},
): Promise<{ location: URL; loginPath: string }> {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'read write',
    state: 'st',
    resource: RESOURCE,
    ...extra,
  });
  const start = await browser.get(`/authorize?${q}`);
  if (start.statusCode !== 303) throw new Error(`authorize: ${start.statusCode} ${start.body}`);
  // A browser already signed in goes straight on to the consent page.
  const signedIn = String(start.headers.location).includes('/consent?request=');
  const loginPath = signedIn ? '' : await answerLoginRequest(start.headers.location, { sub });
  const consentAt = signedIn ? String(start.headers.location) : String((await browser.get(loginPath)).headers.location);
  if (!consentAt.includes('/consent?request=')) throw new Error(`expected consent, got ${consentAt}`);
  const page = await browser.get(pathOf(consentAt));
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
  const requestId = new URL(consentAt, ISSUER).searchParams.get('request')!;
  const decided = await browser.postForm('/consent', { request: requestId, csrf, decision });
  if (decided.statusCode !== 303) throw new Error(`consent: ${decided.statusCode} ${decided.body}`);
  return { location: new URL(String(decided.headers.location)), loginPath };
}

t.test('each event type is recorded by a real flow, as a row and a log line, and no secret is in either', async (t) => {
  const { app, admin, logs } = await setup(t);
  const secrets: string[] = [ADMIN_TOKEN];
  const sub = `user-${randomBytes(4).toString('hex')}`;

  // A machine client through the admin API: client.created, admin.action.
  const created = await admin.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: AUTH,
    payload: {
      name: 'Audit machine',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scopes: ['read'],
      resources: [RESOURCE],
    },
  });
  t.equal(created.statusCode, 201, created.body);
  const machine = created.json().client.client_id as string;
  const machineSecret = created.json().client_secret as string;
  secrets.push(machineSecret);
  const basic = (id: string, secret: string) => ({
    authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
  });

  // client_credentials: token.issued; a wrong secret and an unknown client: client.authentication_failed.
  const cc = await token(app, { grant_type: 'client_credentials', scope: 'read' }, basic(machine, machineSecret));
  t.equal(cc.statusCode, 200, cc.body);
  secrets.push(cc.json().access_token);
  const wrongSecret = `wrong-${randomBytes(16).toString('base64url')}`;
  secrets.push(wrongSecret);
  t.equal((await token(app, { grant_type: 'client_credentials' }, basic(machine, wrongSecret))).statusCode, 401);
  t.equal((await token(app, { grant_type: 'client_credentials' }, basic('nobody-here', wrongSecret))).statusCode, 401);

  // RFC 7591 registration of a public client: client.registered.
  const registered = await register(app, {
    client_name: 'Audit app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    scope: 'read write',
  });
  t.equal(registered.statusCode, 201, registered.body);
  const app1 = registered.json().client_id as string;
  secrets.push(registered.json().registration_access_token);

  // Sign-in, consent, code, tokens; a refresh; then reuse of the rotated token and a replayed code.
  const browser = new Browser(app);
  const { verifier, challenge } = pkce();
  secrets.push(verifier);
  const allowed = await flow(browser, app1, challenge, sub, 'allow');
  secrets.push(new URL(allowed.loginPath, ISSUER).searchParams.get('login_response')!);
  const code = allowed.location.searchParams.get('code')!;
  secrets.push(code);
  const exchange = {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    client_id: app1,
    redirect_uri: REDIRECT,
  };
  const tokens = await token(app, exchange);
  t.equal(tokens.statusCode, 200, tokens.body);
  const first = tokens.json<{ access_token: string; refresh_token: string }>();
  secrets.push(first.access_token, first.refresh_token);
  const refreshed = await token(app, {
    grant_type: 'refresh_token',
    refresh_token: first.refresh_token,
    client_id: app1,
  });
  t.equal(refreshed.statusCode, 200, refreshed.body);
  secrets.push(refreshed.json().access_token, refreshed.json().refresh_token);
  const reused = await token(app, { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: app1 });
  t.equal(reused.json().error, 'invalid_grant');
  t.equal((await token(app, exchange)).json().error, 'invalid_grant', 'the code a second time');

  // prompt=consent and Deny: consent.denied.
  const second = pkce();
  const denied = await flow(browser, app1, second.challenge, sub, 'deny', { prompt: 'consent' });
  t.equal(denied.location.searchParams.get('error'), 'access_denied');
  secrets.push(...browser.cookies.values());

  // Admin changes: client.updated, client.secret_rotated, client.disabled, key.rotated, consent.revoked,
  // session.ended, client.deleted; each one an admin.action too.
  const adminCall = async (method: 'PATCH' | 'POST' | 'DELETE', url: string, payload?: object) => {
    const res = await admin.inject({ method, url, headers: AUTH, ...(payload ? { payload } : {}) });
    t.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
    return res;
  };
  await adminCall('PATCH', `/admin/clients/${machine}`, { name: 'Audit machine 2' });
  secrets.push((await adminCall('POST', `/admin/clients/${machine}/rotate-secret`)).json().client_secret);
  await adminCall('PATCH', `/admin/clients/${machine}`, { disabled: true });
  const rotated = (await adminCall('POST', '/admin/keys/rotate')).json().key.kid as string;
  await adminCall('DELETE', `/admin/users/${sub}/grants?client_id=${encodeURIComponent(app1)}`);
  await adminCall('DELETE', `/admin/users/${sub}/sessions`);
  await adminCall('DELETE', `/admin/clients/${machine}`);

  const events = await allEvents(app, admin);
  const mine = events.filter((e) => e.subject === sub || e.client_id === machine || e.client_id === app1);

  t.match(one(t, mine, 'client.created', { client_id: machine }), {
    actor: 'admin',
    address: '127.0.0.1',
    details: { source: 'admin', via: 'admin_api', auth_method: 'client_secret_basic' },
  });
  t.match(one(t, mine, 'token.issued', { client_id: machine }), {
    actor: 'client',
    subject: null,
    address: '127.0.0.1',
    details: { grant_type: 'client_credentials', scopes: ['read'], audience: [RESOURCE], refresh: false },
  });
  const failures = mine.filter((e) => e.type === 'client.authentication_failed');
  t.match(
    failures.find((e) => e.client_id === machine),
    {
      actor: 'client',
      details: { endpoint: '/token', method: 'client_secret_basic', reason: 'wrong_secret' },
    },
  );
  t.match(
    events.find((e) => e.type === 'client.authentication_failed' && e.client_id === 'nobody-here'),
    { details: { reason: 'unknown_client' } },
    'an unknown client_id is recorded as presented, with its reason class',
  );
  t.match(one(t, mine, 'client.registered', { client_id: app1 }), {
    actor: 'client',
    details: { source: 'registration', via: 'registration' },
  });
  t.match(one(t, mine, 'sign_in.completed', { subject: sub }), { actor: 'user', client_id: app1 });
  t.match(one(t, mine, 'consent.granted', { subject: sub }), {
    client_id: app1,
    details: { scopes: ['read', 'write'], resources: [RESOURCE] },
  });
  t.match(one(t, mine, 'code.issued', { subject: sub }), { client_id: app1, details: { redirect_uri: REDIRECT } });
  const issued = mine.filter((e) => e.type === 'token.issued' && e.client_id === app1);
  t.same(
    issued.map((e) => e.details.grant_type).sort(),
    ['authorization_code', 'refresh_token'],
    'one token.issued per token response, by grant type',
  );
  t.ok(issued.every((e) => e.subject === sub && e.details.refresh === true));
  t.same(
    issued.map((e) => e.details.audience),
    [[RESOURCE], [RESOURCE]],
    "each records its access token's audience as signed",
  );
  t.match(one(t, mine, 'refresh.reuse_detected', { subject: sub }), {
    actor: 'client',
    client_id: app1,
    details: { chain_revoked: true, generation: 0 },
  });
  t.match(one(t, mine, 'code.reuse_detected', { subject: sub }), { client_id: app1 });
  t.match(one(t, mine, 'consent.denied', { subject: sub }), { actor: 'user', client_id: app1 });
  t.match(one(t, mine, 'client.updated', { client_id: machine }), { details: { fields: ['name'] } });
  one(t, mine, 'client.secret_rotated', { client_id: machine });
  one(t, mine, 'client.disabled', { client_id: machine });
  one(t, mine, 'client.deleted', { client_id: machine });
  t.match(one(t, events, 'key.rotated', { actor: 'admin' }), { details: { kid: rotated, trigger: 'manual' } });
  t.match(one(t, mine, 'consent.revoked', { subject: sub }), {
    actor: 'admin',
    client_id: app1,
    details: { consents: 1, via: 'admin_api' },
  });
  t.match(one(t, mine, 'session.ended', { subject: sub }), { actor: 'admin', details: { via: 'admin_api' } });
  const actions = events.filter((e) => e.type === 'admin.action');
  t.ok(
    actions.some(
      (e) =>
        e.details.route === '/admin/clients/:client_id' && e.details.method === 'DELETE' && e.client_id === machine,
    ),
    'every admin API change is an admin.action with its route template',
  );
  t.ok(actions.every((e) => e.actor === 'admin' && e.details.admin === 'ADMIN_TOKEN'));
  t.notOk(
    events.some((e) => e.type === 'admin.action' && e.details.method === 'GET'),
    'reads are not admin actions',
  );

  // The log has the same events, one line each.
  const lines = auditLines(logs);
  for (const e of mine) {
    t.ok(
      lines.some((l) => l.type === e.type && l.occurred_at === e.occurred_at && l.client_id === e.client_id),
      `${e.type} is a log line too`,
    );
  }

  // No secret, code, token, cookie, assertion or login_response anywhere in the rows or the audit lines.
  const database = await testDatabase();
  const rows = await database.db.selectFrom('audit_events').selectAll().execute();
  const haystack = JSON.stringify(rows) + JSON.stringify(lines) + JSON.stringify(events);
  t.ok(secrets.length >= 15, `${secrets.length} secret values checked`);
  for (const secret of secrets) {
    t.ok(secret && secret.length >= 16, 'a real secret value');
    t.notOk(haystack.includes(secret), `no secret value in the audit trail (${secret.slice(0, 4)}…)`);
  }
});

t.test('automatic key rotation is recorded by the system actor', async (t) => {
  let now = Date.now();
  const config = testConfig({ ...ENV, KEY_ROTATION_INTERVAL_SECONDS: '7200', KEY_ROTATION_DELAY_SECONDS: '600' });
  const app = await buildApp(config, { database: await testDatabase(), clock: () => new Date(now) });
  t.teardown(() => app.close());
  await app.ready();
  const rotations = () =>
    testDatabase().then((database) =>
      database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('type', '=', 'key.rotated')
        .where('actor', '=', 'system')
        .execute(),
    );
  // Past the active key's interval (minus the rotation delay) its successor is published; a key another
  // test left pending is promoted first, and the one promoted then gets its successor an interval later.
  let rows = await rotations();
  for (let step = 0; step < 3 && rows.length === 0; step++) {
    now += 7200_000;
    await app.keys.refresh();
    await app.audit.flush();
    rows = await rotations();
  }
  const active = app.keys.current().kid;
  t.equal(rows.length, 1, 'one key.rotated by the system');
  t.match(rows[0]!.details, { trigger: 'automatic' });
  t.not(rows[0]!.details.kid, active, 'naming the successor');
});

t.test('GET /admin/audit-events: filters, newest first, keyset pages, precise 400s', async (t) => {
  const { app, admin } = await setup(t);
  const tag = randomBytes(4).toString('hex');
  const base = Date.parse('2026-01-01T00:00:00Z');
  const database = await testDatabase();
  // 25 events a minute apart, three of them at the same instant (the id orders those).
  const rows = Array.from({ length: 25 }, (_, i) => ({
    occurred_at: new Date(base + Math.min(i, 20) * 60_000),
    type: i % 3 === 0 ? 'consent.granted' : i % 3 === 1 ? 'consent.denied' : 'token.issued',
    subject: i % 2 === 0 ? `even-${tag}` : `odd-${tag}`,
    client_id: `client-${tag}`,
    actor: 'user',
    address: null,
    details: JSON.stringify({ i }),
  }));
  await insertAuditEvents(database.db, rows);

  const all = await allEvents(app, admin, { client_id: `client-${tag}`, limit: '4' });
  t.equal(all.length, 25, 'every event, across 7 pages, once');
  t.equal(new Set(all.map((e) => e.id)).size, 25, 'no duplicates across pages');
  const order = all.map((e) => Date.parse(e.occurred_at));
  t.same(
    order,
    [...order].sort((a, b) => b - a),
    'newest first',
  );
  t.same(
    all.slice(0, 5).map((e) => e.details.i),
    [24, 23, 22, 21, 20],
    'events at the same instant: the newer row first',
  );

  const q = (query: Record<string, string>) =>
    admin.inject({ method: 'GET', url: `/admin/audit-events?${new URLSearchParams(query)}`, headers: AUTH });
  const page = await q({ client_id: `client-${tag}`, limit: '10' });
  t.equal(page.statusCode, 200);
  t.equal(page.json().events.length, 10);
  t.type(page.json().next_cursor, 'string');
  t.same(Object.keys(page.json().events[0]).sort(), [
    'actor',
    'address',
    'client_id',
    'details',
    'id',
    'occurred_at',
    'subject',
    'type',
  ]);

  const evens = (await q({ subject: `even-${tag}`, limit: '500' })).json().events as AuditRow[];
  t.equal(evens.length, 13);
  t.ok(
    evens.every((e) => e.subject === `even-${tag}`),
    'by subject',
  );
  const consents = (await q({ client_id: `client-${tag}`, type: 'consent.', limit: '500' })).json()
    .events as AuditRow[];
  t.equal(consents.length, 17, 'a type prefix ending in a dot');
  const granted = (await q({ client_id: `client-${tag}`, type: 'consent.granted', limit: '500' })).json()
    .events as AuditRow[];
  t.equal(granted.length, 9, 'an exact type');
  t.equal(
    (await q({ client_id: `client-${tag}`, type: 'consent' })).json().events.length,
    0,
    'no prefix without the dot',
  );
  for (const type of ['token.issued', 'token.']) {
    const issued = (await q({ client_id: `client-${tag}`, type, limit: '500' })).json().events as AuditRow[];
    t.same(
      issued.map((e) => e.details.i),
      [23, 20, 17, 14, 11, 8, 5, 2],
      `token.issued (left out of the type index) by ${type}`,
    );
  }
  t.equal(
    (await q({ client_id: `client-${tag}`, type: 'token.issued.', limit: '500' })).json().events.length,
    0,
    'a prefix below token.issued holds none of it',
  );
  const window = (
    await q({ client_id: `client-${tag}`, since: '2026-01-01T00:05:00Z', until: '2026-01-01T00:10:00Z', limit: '500' })
  ).json().events as AuditRow[];
  t.same(
    window.map((e) => e.details.i),
    [9, 8, 7, 6, 5],
    'since is inclusive, until exclusive',
  );
  t.equal(page.headers['cache-control'], 'no-store');

  const bad: Array<[Record<string, string> | string, RegExp]> = [
    [{ limit: '0' }, /^limit: must be an integer from 1 to 500$/],
    [{ limit: '501' }, /^limit: must be an integer from 1 to 500$/],
    [{ limit: 'ten' }, /^limit: /],
    [{ since: 'yesterday' }, /^since: must be an RFC 3339 date-time/],
    [{ until: '2026-13-45T00:00:00Z' }, /^until: /],
    [{ since: '2026-01-02', until: '2026-01-01' }, /^since: must be before until$/],
    [{ type: 'Consent.Granted' }, /^type: must be an event type/],
    [{ cursor: 'not-a-cursor' }, /^cursor: not a cursor this endpoint returned/],
    [{ subject: '' }, /^subject: must be 1 to 1024 characters$/],
    [{ sub: 'alice' }, /^unknown parameter: sub /],
    ['subject=a&subject=b', /^subject: must appear once$/],
  ];
  for (const [query, message] of bad) {
    const url = `/admin/audit-events?${typeof query === 'string' ? query : new URLSearchParams(query)}`;
    const res = await admin.inject({ method: 'GET', url, headers: AUTH });
    t.equal(res.statusCode, 400, url);
    t.equal(res.json().error, 'invalid_request', url);
    t.match(res.json().error_description, message, url);
  }
  const noToken = await admin.inject({ method: 'GET', url: '/admin/audit-events' });
  t.equal(noToken.statusCode, 401, 'the admin token is required');
});

t.test('the type, subject and client indexes serve their filters and leave out what no filter asks for', async (t) => {
  const database = await testDatabase();
  const db = database.db;
  const tag = randomBytes(4).toString('hex');
  const at = Date.parse('2026-02-01T00:00:00Z');
  // What a busy server's table looks like: token.issued rows by the thousand, a few of every other type.
  const rows = Array.from({ length: 4000 }, (_, i) => ({
    occurred_at: new Date(at + i * 1000),
    type: i % 200 === 0 ? `consent.granted` : 'token.issued',
    subject: i % 2 === 0 ? `user-${tag}-${i % 50}` : null,
    client_id: `client-${tag}-${i % 20}`,
    actor: 'client',
    address: null,
    details: '{}',
  }));
  await insertAuditEvents(db, rows);
  const table = sql.table(`${TEST_SCHEMA}.audit_events`);
  await sql`analyze ${table}`.execute(database.root);

  const definitions = await sql<{ indexname: string; indexdef: string }>`
    select c.relname as indexname, pg_get_indexdef(i.indexrelid) as indexdef
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = (select tableoid from ${table} limit 1)`.execute(database.root);
  const def = (name: string) => definitions.rows.find((r) => r.indexname === name)?.indexdef ?? '';
  t.match(
    def('audit_events_type'),
    /WHERE \(type <> 'token\.issued'::text\)/,
    'the type index leaves token.issued out',
  );
  t.match(
    def('audit_events_subject'),
    /WHERE \(subject IS NOT NULL\)/,
    'the subject index leaves rows without one out',
  );
  t.match(def('audit_events_client_id'), /WHERE \(client_id IS NOT NULL\)/, 'the client index likewise');

  // The plan Postgres picks for each filter (JSON EXPLAIN, without running it), by index name.
  const indexesUsed = async (filter: Omit<AuditEventFilter, 'limit'>): Promise<string[]> => {
    const plan = (await auditEventsQuery(db, { ...filter, limit: 50 }).explain('json'))[0] as Record<string, unknown>;
    const names: string[] = [];
    const walk = (node: Record<string, unknown>) => {
      if (typeof node['Index Name'] === 'string') names.push(node['Index Name']);
      for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(child);
    };
    walk((plan['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0]!.Plan);
    return names;
  };
  t.same(await indexesUsed({ type: 'consent.granted' }), ['audit_events_type'], 'an exact type');
  t.same(await indexesUsed({ type: 'consent.' }), ['audit_events_type'], 'a type prefix');
  t.same(await indexesUsed({ subject: `user-${tag}-4` }), ['audit_events_subject'], 'a subject');
  t.same(await indexesUsed({ clientId: `client-${tag}-7` }), ['audit_events_client_id'], 'a client');
  t.same(
    await indexesUsed({ type: 'token.issued' }),
    ['audit_events_occurred_at'],
    'token.issued: newest first by time',
  );
});

t.test('the janitor deletes audit events older than AUDIT_RETENTION_DAYS, in batches', async (t) => {
  const database = await testDatabase();
  const now = Date.now();
  const tag = randomBytes(4).toString('hex');
  const row = (daysAgo: number, i: number) => ({
    occurred_at: new Date(now - daysAgo * 86_400_000),
    type: 'admin.action',
    subject: null,
    client_id: `retention-${tag}`,
    actor: 'admin',
    address: null,
    details: JSON.stringify({ i }),
  });
  await insertAuditEvents(database.db, [
    ...Array.from({ length: 7 }, (_, i) => row(91, i)),
    ...Array.from({ length: 3 }, (_, i) => row(89, 100 + i)),
  ]);
  const left = () =>
    database.db.selectFrom('audit_events').select('details').where('client_id', '=', `retention-${tag}`).execute();
  const options = {
    retentionSeconds: 3600,
    sessionIdleSeconds: 3600,
    accessTokenLifetimeSeconds: 3600,
    clock: () => new Date(now),
    batch: 2,
  };
  t.equal(
    (await sweepExpired(database.db, options)).audit_events,
    0,
    'AUDIT_RETENTION_DAYS=0 (absent) keeps everything',
  );
  t.equal((await left()).length, 10);
  const swept = await sweepExpired(database.db, { ...options, auditRetentionSeconds: 90 * 86_400 });
  t.ok(swept.audit_events >= 7, 'the old events are deleted, two per statement');
  t.same((await left()).map((r) => r.details.i).sort(), [100, 101, 102], 'the events inside the retention period stay');
  t.equal(testConfig().audit.retentionDays, 90, 'the default keeps 90 days');
});

t.test('a batch is stored whole and in order, whatever its text holds', async (t) => {
  const database = await testDatabase();
  const tag = randomBytes(4).toString('hex');
  const at = new Date('2026-03-01T12:00:00.123Z');
  // A presented client id is the requester's text: quotes, backslashes, a NUL (which Postgres text cannot
  // hold), non-ASCII; none of it may cost the batch its rows.
  const odd = `cl"i\\ent\u0000${tag}-é`;
  await insertAuditEvents(database.db, [
    {
      occurred_at: at,
      type: 'client.authentication_failed',
      subject: null,
      client_id: odd,
      actor: 'client',
      address: '::1',
      details: JSON.stringify({ reason: 'a "quoted" \\ reason', tag }),
    },
    ...Array.from({ length: 5 }, (_, i) => ({
      occurred_at: at,
      type: 'token.issued',
      subject: `s-${tag}`,
      client_id: `c-${tag}`,
      actor: 'client',
      address: null,
      details: JSON.stringify({ i, tag }),
    })),
  ]);
  const rows = await database.db
    .selectFrom('audit_events')
    .selectAll()
    .where((eb) => eb.or([eb('subject', '=', `s-${tag}`), eb('client_id', 'like', `%${tag}-é`)]))
    .orderBy('id')
    .execute();
  t.equal(rows.length, 6, 'every row of the batch');
  t.equal(rows[0]!.client_id, `cl"i\\ent\ufffd${tag}-é`, 'the text kept, a NUL replaced by U+FFFD');
  t.same(rows[0]!.details, { reason: 'a "quoted" \\ reason', tag }, 'details kept as given');
  t.equal(rows[0]!.address, '::1');
  t.equal(new Date(rows[0]!.occurred_at).toISOString(), at.toISOString(), 'the instant, to the millisecond');
  t.same(
    rows.slice(1).map((r) => r.details.i),
    [0, 1, 2, 3, 4],
    'ids follow the order of the batch',
  );
});

t.test('a failed audit write never fails the request: counted, and the log line is still out', async (t) => {
  const { app, admin, logs } = await setup(t);
  const database = await testDatabase();
  const created = await app.clientAdmin.create({
    name: 'Outage',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    scopes: ['read'],
    resources: [RESOURCE],
  });
  await app.audit.flush();
  // The table is gone for a moment (a real failing INSERT, as when the database refuses it).
  await database.db.schema.alterTable('audit_events').renameTo('audit_events_away').execute();
  let away = true;
  const restore = async () => {
    if (away) await database.db.schema.alterTable('audit_events_away').renameTo('audit_events').execute();
    away = false;
  };
  t.teardown(restore);
  const auth = `Basic ${Buffer.from(`${created.client.client_id}:${created.secret}`).toString('base64')}`;
  const res = await token(app, { grant_type: 'client_credentials', scope: 'read' }, { authorization: auth });
  t.equal(res.statusCode, 200, 'the token response is unaffected');
  await app.audit.flush();
  t.ok(
    auditLines(logs).some((l) => l.type === 'token.issued' && l.client_id === created.client.client_id),
    'the event is in the log',
  );
  t.ok(
    logs.some((l) => l.msg === 'could not store audit events; they are in the log only' && l.level === 'warn'),
    'the failed write is warned about',
  );
  const metrics = await admin.inject({ method: 'GET', url: '/metrics' });
  t.match(metrics.body, /gatehouse_audit_events_lost_total\{reason="write_failed"\} [1-9]/, 'and counted');
  await restore();
  const again = await token(app, { grant_type: 'client_credentials', scope: 'read' }, { authorization: auth });
  t.equal(again.statusCode, 200);
  const stored = await allEvents(app, admin, { client_id: created.client.client_id, type: 'token.issued' });
  t.equal(stored.length, 1, 'once the table is back, events are stored again (the lost one stays lost)');
});

t.test(
  'a token request is one log line: token.issued rides on its request line, or stands alone without request lines',
  async (t) => {
    for (const requests of ['true', 'false']) {
      const { app, logs } = await setup(t, { LOG_REQUESTS: requests });
      const created = await app.clientAdmin.create({
        name: `One line ${requests}`,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        scopes: ['read'],
        resources: [RESOURCE],
      });
      const auth = `Basic ${Buffer.from(`${created.client.client_id}:${created.secret}`).toString('base64')}`;
      const before = logs.length;
      const res = await token(app, { grant_type: 'client_credentials', scope: 'read' }, { authorization: auth });
      t.equal(res.statusCode, 200);
      const lines = logs.slice(before);
      t.equal(lines.length, 1, `LOG_REQUESTS=${requests}: one line for the token request`);
      const [line] = lines;
      t.equal(line!.msg, requests === 'true' ? 'request completed' : 'audit');
      t.match(line!.audit, {
        type: 'token.issued',
        client_id: created.client.client_id,
        actor: 'client',
        details: { grant_type: 'client_credentials', scopes: ['read'], audience: [RESOURCE] },
      });
      if (requests === 'true') t.match(line, { method: 'POST', url: '/token', statusCode: 200 });
      t.notMatch(JSON.stringify(line), res.json().access_token, 'never the token');
      await app.audit.flush();
      const database = await testDatabase();
      const rows = await database.db
        .selectFrom('audit_events')
        .select('type')
        .where('client_id', '=', created.client.client_id)
        .orderBy('id')
        .execute();
      t.same(
        rows.map((r) => r.type),
        ['client.created', 'token.issued'],
        'and the row is stored as for any event',
      );
    }
  },
);

t.test('AUDIT_TOKEN_EVENTS=false leaves token.issued out; every other type stays', async (t) => {
  const { app, admin } = await setup(t, { AUDIT_TOKEN_EVENTS: 'false' });
  const created = await app.clientAdmin.create({
    name: 'Quiet',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    scopes: ['read'],
    resources: [RESOURCE],
  });
  const auth = `Basic ${Buffer.from(`${created.client.client_id}:${created.secret}`).toString('base64')}`;
  t.equal((await token(app, { grant_type: 'client_credentials' }, { authorization: auth })).statusCode, 200);
  const events = await allEvents(app, admin, { client_id: created.client.client_id });
  t.same(
    events.map((e) => e.type),
    ['client.created'],
    'the client change is recorded, the token is not',
  );
});
