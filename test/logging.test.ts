import t from 'tap';
import { isSensitiveName, redactObject, redactUrl } from '../src/logging.js';
import { buildTestApp } from './helper.js';

t.test('names like secrets, codes, tokens and assertions are sensitive; ordinary ones are not', async (t) => {
  for (const name of [
    'client_secret',
    'code',
    'auth_code',
    'code_verifier',
    'access_token',
    'refresh_token',
    'id_token_hint',
    'password',
    'authorization',
    'cookie',
    'set-cookie',
    'client_assertion',
    'login_request',
    'login_response',
    'registration_access_token',
    'privateKey',
    'x-api-key',
  ]) {
    t.ok(isSensitiveName(name), `${name} is redacted`);
  }
  for (const name of [
    'statusCode',
    'state',
    'client_id',
    'scope',
    'redirect_uri',
    'method',
    'url',
    'reqId',
    'code_challenge_method',
    'responseTime',
  ]) {
    t.notOk(isSensitiveName(name), `${name} is kept`);
  }
});

t.test('redactUrl hides sensitive query values and keeps the rest', async (t) => {
  t.equal(redactUrl('/cb?code=abc123&state=xyz'), '/cb?code=%5Bredacted%5D&state=xyz');
  t.equal(redactUrl('/authorize?client_id=c1&login_hint=u'), '/authorize?client_id=c1&login_hint=u');
  t.equal(redactUrl('/x?access_token=a&access_token=b'), '/x?access_token=%5Bredacted%5D');
  t.equal(redactUrl('/plain'), '/plain');
});

t.test('redactObject walks nested plain data', async (t) => {
  const out = redactObject({
    body: { client_secret: 's3', grant_type: 'x', nested: [{ refresh_token: 'r' }] },
    statusCode: 200,
  });
  t.same(out, {
    body: { client_secret: '[redacted]', grant_type: 'x', nested: [{ refresh_token: '[redacted]' }] },
    statusCode: 200,
  });
});

t.test('redactObject copies only what it redacts and never changes its argument', async (t) => {
  const clean = { method: 'POST', audit: { type: 'token.issued', scopes: ['read'] }, statusCode: 200 };
  t.equal(redactObject(clean), clean, 'nothing to redact: the object itself');
  const input = { audit: { type: 'x', details: [{ access_token: 'at' }, { ok: 1 }] }, other: { a: 1 } };
  const before = JSON.stringify(input);
  const out = redactObject(input) as typeof input;
  t.equal(JSON.stringify(input), before, 'the argument is unchanged');
  t.same(out, { audit: { type: 'x', details: [{ access_token: '[redacted]' }, { ok: 1 }] }, other: { a: 1 } });
  t.equal(out.other, input.other, 'untouched branches are shared, not copied');
  t.equal(out.audit.details[1], input.audit.details[1]);
  // The same keys seen again (answers are remembered) get the same answers.
  for (let i = 0; i < 2; i++) {
    t.same(redactObject({ client_secret: 's', statusCode: 200 }), { client_secret: '[redacted]', statusCode: 200 });
  }
});

t.test('one log line per request, with its request id and never secrets, codes, tokens or cookies', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  const app = await buildTestApp(t, { LOG_LEVEL: 'info' }, { logs });
  const res = await app.inject({
    method: 'GET',
    url: '/.well-known/oauth-authorization-server?code=SECRETCODE&state=visible-state&client_secret=SECRETPW&login_response=eyJSECRET',
    headers: {
      authorization: 'Basic U0VDUkVUQkFTSUM=',
      cookie: 'gh_session=SECRETCOOKIE',
      'x-request-id': 'req-abc-123',
    },
  });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['x-request-id'], 'req-abc-123', 'a plain caller request id is kept');
  app.log.info(
    {
      headers: { authorization: 'Bearer SECRETBEARER', cookie: 'SECRETCOOKIE2' },
      params: { code_verifier: 'SECRETVERIFIER' },
    },
    'diagnostic',
  );
  const text = logs.map((l) => JSON.stringify(l)).join('\n');
  t.notMatch(text, /SECRET/, 'no secret value reaches the log');
  t.match(text, /visible-state/, 'ordinary parameters stay readable');
  const lines = logs.filter((l) => l.reqId === 'req-abc-123');
  t.equal(lines.length, 1, 'one line for the request, not two');
  t.match(lines[0], {
    level: 'info',
    msg: 'request completed',
    method: 'GET',
    url: /^\/\.well-known\/oauth-authorization-server\?code=%5Bredacted%5D/,
    statusCode: 200,
    responseTime: Number,
  });
  t.notOk(
    logs.some((l) => l.msg === 'incoming request'),
    "Fastify's own request lines are off",
  );
});

t.test('health probes log at debug; LOG_REQUESTS=false turns request lines off', async (t) => {
  const atInfo: Array<Record<string, unknown>> = [];
  const info = await buildTestApp(t, { LOG_LEVEL: 'info' }, { logs: atInfo });
  for (const url of ['/healthz', '/readyz']) t.equal((await info.inject({ method: 'GET', url })).statusCode, 200);
  t.same(
    atInfo.filter((l) => l.msg === 'request completed'),
    [],
    'probes write nothing at info',
  );

  const atDebug: Array<Record<string, unknown>> = [];
  const debug = await buildTestApp(t, { LOG_LEVEL: 'debug' }, { logs: atDebug });
  await debug.inject({ method: 'GET', url: '/healthz' });
  t.match(
    atDebug.find((l) => l.msg === 'request completed'),
    { level: 'debug', url: '/healthz', statusCode: 200 },
  );

  const quiet: Array<Record<string, unknown>> = [];
  const off = await buildTestApp(t, { LOG_LEVEL: 'debug', LOG_REQUESTS: 'false' }, { logs: quiet });
  await off.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
  await off.inject({ method: 'GET', url: '/nowhere' });
  t.same(
    quiet.filter((l) => l.msg === 'request completed'),
    [],
  );
});

t.test('an unsafe caller request id is replaced', async (t) => {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'bad id\nwith newline' } });
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/);
});
