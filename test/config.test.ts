import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  ConfigError,
  describeConfig,
  isPublishedSecret,
  loadConfig,
  PUBLISHED_SECRETS,
  schemaLeaves,
  secretWeakness,
} from '../src/config/index.js';
import { DomainError } from '../src/lib/errors.js';
import { canonicalUrl } from '../src/lib/syntax.js';

const STRONG = 'q8Jr2vN0xK7pL4mZ9tY6wB3cF1hD5gS0aE8uI2oP';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

t.test('defaults load into a frozen, typed object', async (t) => {
  const { config, sources } = loadConfig({});
  t.equal(config.server.port, 4000);
  t.equal(config.server.host, '127.0.0.1');
  t.equal(config.issuer, 'http://localhost:4000', 'issuer defaults to localhost on PORT outside production');
  t.equal(config.database.url, '');
  t.equal(config.database.schema, 'gatehouse');
  t.equal(config.database.autoMigrate, true);
  t.equal(sources.PORT, 'default');
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.server), 'frozen all the way down');
  t.throws(() => {
    (config.server as { port: number }).port = 1;
  });
});

t.test('environment values are coerced and their source recorded', async (t) => {
  const { config, sources } = loadConfig({
    PORT: '8080',
    AUTO_MIGRATE: 'false',
    DATABASE_POOL_MAX: '3',
    LOG_PRETTY: 'yes',
  });
  t.equal(config.server.port, 8080);
  t.equal(config.database.autoMigrate, false);
  t.equal(config.database.poolMax, 3);
  t.equal(config.log.pretty, true);
  t.equal(config.issuer, 'http://localhost:8080');
  t.equal(sources.PORT, 'env');
  t.equal(sources.HOST, 'default');
});

t.test('each bad value produces a message naming its variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: '99999' }, /^PORT: ports must be within range/],
    [{ PORT: 'eighty' }, /^PORT: /],
    [{ HOST: 'not a host!' }, /^HOST: must be a host name or IP address/],
    [{ DATABASE_URL: 'mysql://db/x' }, /^DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL: must be a postgres:\/\/ URL/],
    [{ DATABASE_POOL_MAX: '0' }, /^DATABASE_POOL_MAX: must be a positive integer/],
    [{ DATABASE_POOL_MAX: 'many' }, /^DATABASE_POOL_MAX: must be a positive integer/],
    [{ DATABASE_SCHEMA: 'Bad-Name' }, /^DATABASE_SCHEMA: must be a lower-case SQL identifier/],
    [{ AUTO_MIGRATE: 'maybe' }, /^AUTO_MIGRATE: must be true or false/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: must be one of the possible values/],
    [{ ISSUER: 'auth.example.com' }, /^ISSUER: must be an absolute URL/],
    [{ ISSUER: 'ftp://auth.example.com' }, /^ISSUER: must be an http\(s\) URL/],
    [{ ISSUER: 'https://auth.example.com/?x=1' }, /^ISSUER: must not have a query or fragment \(RFC 8414 §2\)/],
    [{ ISSUER: 'https://auth.example.com/#f' }, /^ISSUER: must not have a query or fragment/],
    [{ TRUST_PROXY: 'everyone' }, /^TRUST_PROXY: must be true, false, a hop count/],
    [{ SIGNING_ALG: 'HS256' }, /^SIGNING_ALG: must be one of the possible values/],
    [{ SCOPES: '{"read": ' }, /^SCOPES: must be a JSON object/],
    [{ SCOPES: 'read "bad' }, /^SCOPES: ""bad" is not a valid scope name \(RFC 6749 §3.3\)/],
    [{ RESOURCES: 'https://api.example.com/#frag' }, /^RESOURCES: .* must not have a fragment \(RFC 8707 §2\)/],
    [{ RESOURCES: 'relative/path' }, /^RESOURCES: "relative\/path" is not an absolute URI/],
    [
      { RESOURCES: 'https://a.example.com', DEFAULT_RESOURCE: 'https://b.example.com' },
      /^DEFAULT_RESOURCE: must be one of RESOURCES/,
    ],
    [
      {
        RESOURCES: 'https://a.example.com https://b.example.com',
        DEFAULT_RESOURCE: 'https://a.example.com,https://b.example.com',
      },
      /^DEFAULT_RESOURCE: must be a single URI/,
    ],
    [
      { KEY_ROTATION_DELAY_SECONDS: '320', JWKS_MAX_AGE_SECONDS: '300', KEY_CACHE_TTL_SECONDS: '30' },
      /^KEY_ROTATION_DELAY_SECONDS: must be longer than JWKS_MAX_AGE_SECONDS \+ KEY_CACHE_TTL_SECONDS/,
    ],
    [{ SHUTDOWN_TIMEOUT_SECONDS: '-1' }, /^SHUTDOWN_TIMEOUT_SECONDS: must be a positive integer/],
    [{ CLOCK_SKEW_SECONDS: 'x' }, /^CLOCK_SKEW_SECONDS: must be a non-negative integer/],
    [{ JANITOR_INTERVAL_SECONDS: '-5' }, /^JANITOR_INTERVAL_SECONDS: must be a non-negative integer/],
    [{ JANITOR_RETENTION_SECONDS: '1.5' }, /^JANITOR_RETENTION_SECONDS: must be a non-negative integer/],
    [{ JANITOR_DUTY_PERCENT: '0' }, /^JANITOR_DUTY_PERCENT: must be a whole percentage from 1 to 100/],
    [{ JANITOR_DUTY_PERCENT: '101' }, /^JANITOR_DUTY_PERCENT: must be a whole percentage from 1 to 100/],
    [{ JANITOR_DUTY_PERCENT: '12.5' }, /^JANITOR_DUTY_PERCENT: must be a whole percentage from 1 to 100/],
    [{ ADMIN_PORT: '4001' }, /^ADMIN_TOKEN: required when ADMIN_PORT is set/],
    [{ ADMIN_PORT: '4001', ADMIN_TOKEN: 'short' }, /^ADMIN_TOKEN: must be at least 32 characters/],
    [
      { ADMIN_PORT: '4001', ADMIN_TOKEN: 'changeme-changeme-changeme-changeme-1234' },
      /^ADMIN_TOKEN: looks like a placeholder/,
    ],
    [
      { PORT: '4001', ADMIN_PORT: '4001', ADMIN_TOKEN: 'Zq3v9XkP0aLmB7nR2sT5wY8cE1dF4gH6jK' },
      /^ADMIN_PORT: must differ from PORT/,
    ],
    [{ ADMIN_PORT: '70000' }, /^ADMIN_PORT: /],
    [
      { ADMIN_PORT: '4001', ADMIN_TOKEN: 'Zq3v9XkP0aLmB7nR 2sT5wY8cE1dF4gH6jK' },
      /^ADMIN_TOKEN: must be visible ASCII without spaces/,
    ],
    [{ JANITOR_INTERVAL_SECONDS: '3000000' }, /^JANITOR_INTERVAL_SECONDS: must be at most 2000000/],
    [
      { NATIVE_REDIRECT_SCHEMES: 'cursor, javascript' },
      /^NATIVE_REDIRECT_SCHEMES: "javascript" is a scheme browsers or the OS give a meaning/,
    ],
    [
      { NATIVE_REDIRECT_SCHEMES: 'com.example.app' },
      /^NATIVE_REDIRECT_SCHEMES: "com.example.app" is not a single-label URI scheme name/,
    ],
    [
      {
        RESOURCES: 'https://api.example.com',
        SIGN_IN_URL: 'https://host.example.com/login',
        HOST_ID: 'https://api.example.com',
        HANDSHAKE_SECRET: 'Zq3v9XkP0aLmB7nR2sT5wY8cE1dF4gH6jK',
      },
      /^HOST_ID: must not be one of RESOURCES/,
    ],
    [
      {
        RESOURCES: 'https://api.example.com',
        SIGN_IN_URL: 'https://host.example.com/login',
        HOST_ID: 'https://API.example.com/',
        HANDSHAKE_SECRET: 'Zq3v9XkP0aLmB7nR2sT5wY8cE1dF4gH6jK',
      },
      /^HOST_ID: must not be one of RESOURCES/,
    ],
  ];
  for (const [env, expected] of cases) {
    const problems = problemsOf(env);
    t.equal(problems.length, 1, `${JSON.stringify(env)} gives exactly one problem`);
    t.match(problems[0], expected, JSON.stringify(env));
  }
});

t.test('every problem is listed at once, one line each', async (t) => {
  const problems = problemsOf({ PORT: '70000', DATABASE_URL: 'mysql://x', AUTO_MIGRATE: 'nah' });
  t.equal(problems.length, 3);
  t.same(
    problems.map((p) => p.split(':')[0]),
    ['PORT', 'DATABASE_URL', 'AUTO_MIGRATE'],
  );
  const err = t.throws(() => loadConfig({ PORT: '70000', AUTO_MIGRATE: 'nah' })) as Error;
  t.match(err.message, /^Invalid configuration:\n {2}- PORT: .*\n {2}- AUTO_MIGRATE: .*$/);
});

t.test('secret values never appear in messages', async (t) => {
  const problems = problemsOf({ DATABASE_URL: 'mysql://app:hunter2@db/x' });
  t.equal(problems.length, 1);
  t.notMatch(problems[0], /hunter2/);
});

t.test('production refuses an http issuer other than loopback', async (t) => {
  const prod = { NODE_ENV: 'production', KEY_ENCRYPTION_SECRET: STRONG };
  t.match(problemsOf({ ...prod, ISSUER: 'http://auth.example.com' }), [/^ISSUER: must be https in production/]);
  t.match(problemsOf({ ...prod }), [/^ISSUER: required in production/]);
  t.same(problemsOf({ ...prod, ISSUER: 'http://127.0.0.1:4000' }), [], 'loopback http is allowed');
  t.same(problemsOf({ ...prod, ISSUER: 'http://localhost:4000' }), []);
  t.same(problemsOf({ ...prod, ISSUER: 'https://auth.example.com' }), []);
  t.same(problemsOf({ ISSUER: 'http://auth.example.com' }), [], 'development allows http');
});

t.test('production refuses a missing, short or weak key-encryption secret', async (t) => {
  const prod = { NODE_ENV: 'production', ISSUER: 'https://auth.example.com' };
  t.match(problemsOf(prod), [/^KEY_ENCRYPTION_SECRET: required in production/]);
  t.match(problemsOf({ ...prod, KEY_ENCRYPTION_SECRET: 'short' }), [
    /^KEY_ENCRYPTION_SECRET: must be at least 32 characters/,
  ]);
  t.match(problemsOf({ ...prod, KEY_ENCRYPTION_SECRET: 'changeme-changeme-changeme-changeme' }), [
    /looks like a placeholder/,
  ]);
  t.match(problemsOf({ ...prod, KEY_ENCRYPTION_SECRET: 'ab'.repeat(20) }), [/too little variety/]);
  t.same(problemsOf({ ...prod, KEY_ENCRYPTION_SECRET: STRONG }), []);
  t.equal(secretWeakness(STRONG), null);
});

t.test('production refuses a guessable DCR initial access token; none may contain spaces', async (t) => {
  const prod = {
    NODE_ENV: 'production',
    ISSUER: 'https://auth.example.com',
    KEY_ENCRYPTION_SECRET: STRONG,
    DCR_ENABLED: 'true',
  };
  t.match(problemsOf({ ...prod, DCR_INITIAL_ACCESS_TOKEN: 'abc' }), [
    /^DCR_INITIAL_ACCESS_TOKEN: must be at least 32 characters/,
  ]);
  t.same(problemsOf({ ...prod, DCR_INITIAL_ACCESS_TOKEN: STRONG }), []);
  t.same(problemsOf({ DCR_INITIAL_ACCESS_TOKEN: 'abc' }), [], 'development allows a short one');
  t.match(problemsOf({ DCR_INITIAL_ACCESS_TOKEN: 'two words' }), [
    /^DCR_INITIAL_ACCESS_TOKEN: must be an RFC 6750 b64token/,
  ]);
  t.match(
    problemsOf({ DCR_INITIAL_ACCESS_TOKEN: 'bang!bang' }),
    [/^DCR_INITIAL_ACCESS_TOKEN: must be an RFC 6750 b64token/],
    'a token /register could never accept',
  );
});

t.test('secrets can come from <NAME>_FILE', async (t) => {
  const dir = t.testdir({ secret: `${STRONG}\n`, dburl: 'postgres://gh:pw@db.internal:5432/gh' });
  const { config, sources } = loadConfig({
    KEY_ENCRYPTION_SECRET_FILE: join(dir, 'secret'),
    DATABASE_URL_FILE: join(dir, 'dburl'),
  });
  t.equal(config.keys.encryptionSecret, STRONG, 'trailing newline is dropped');
  t.equal(config.database.url, 'postgres://gh:pw@db.internal:5432/gh');
  t.equal(sources.KEY_ENCRYPTION_SECRET, 'file');

  t.match(problemsOf({ KEY_ENCRYPTION_SECRET: STRONG, KEY_ENCRYPTION_SECRET_FILE: join(dir, 'secret') }), [
    /^KEY_ENCRYPTION_SECRET: set either KEY_ENCRYPTION_SECRET or KEY_ENCRYPTION_SECRET_FILE, not both/,
  ]);
  t.match(problemsOf({ KEY_ENCRYPTION_SECRET_FILE: join(dir, 'missing') }), [
    /^KEY_ENCRYPTION_SECRET_FILE: cannot read .*missing \(ENOENT\)/,
  ]);
  writeFileSync(join(dir, 'weak'), 'short\n');
  t.match(
    problemsOf({
      NODE_ENV: 'production',
      ISSUER: 'https://a.example.com',
      KEY_ENCRYPTION_SECRET_FILE: join(dir, 'weak'),
    }),
    [/^KEY_ENCRYPTION_SECRET: must be at least 32 characters/],
  );
});

t.test('describeConfig redacts secrets and names each source', async (t) => {
  const loaded = loadConfig({
    KEY_ENCRYPTION_SECRET: STRONG,
    DATABASE_URL: 'postgres://gh:s3cret@db:5432/gh',
    PORT: '4100',
  });
  const rows = Object.fromEntries(describeConfig(loaded).map((r) => [r.env, r]));
  t.same(rows.KEY_ENCRYPTION_SECRET, { env: 'KEY_ENCRYPTION_SECRET', value: '[redacted]', source: 'env' });
  t.equal(rows.DATABASE_URL!.value, 'postgres://gh:redacted@db:5432/gh');
  t.same(rows.PORT, { env: 'PORT', value: 4100, source: 'env' });
  t.equal(rows.HOST!.source, 'default');
  t.notMatch(JSON.stringify(rows), /s3cret|q8Jr2vN0/);
});

t.test('URLs are canonicalised before comparison', async (t) => {
  t.equal(canonicalUrl('HTTPS://Auth.Example.COM:443/'), 'https://auth.example.com');
  t.equal(canonicalUrl('http://localhost:80'), 'http://localhost');
  t.equal(canonicalUrl('https://api.example.com:8443/v1/'), 'https://api.example.com:8443/v1/');
  t.equal(canonicalUrl('https://api.example.com/mcp#x'), 'https://api.example.com/mcp');
  t.equal(loadConfig({ ISSUER: 'HTTPS://Auth.Example.com:443/' }).config.issuer, 'https://auth.example.com');
  t.equal(loadConfig({ ISSUER: 'https://example.com/tenant/a' }).config.issuer, 'https://example.com/tenant/a');
});

t.test('the list settings are parsed once at start into the policy', async (t) => {
  const { config } = loadConfig({
    SCOPES: '{"read":"Read your data","write":"Change your data"}',
    ENFORCE_SCOPES: 'false',
    RESOURCES: 'HTTPS://API.example.com:443/, https://mcp.example.com/mcp',
    DEFAULT_RESOURCE: 'https://mcp.example.com/mcp',
    NATIVE_REDIRECT_SCHEMES: 'Cursor:, vscode://',
  });
  t.same(
    [...config.policy.scopes.catalogue],
    [
      ['read', 'Read your data'],
      ['write', 'Change your data'],
    ],
  );
  t.equal(config.policy.scopes.enforce, false);
  t.same(config.policy.resources, {
    configured: ['https://api.example.com', 'https://mcp.example.com/mcp'],
    fallback: 'https://mcp.example.com/mcp',
  });
  t.same([...config.policy.nativeSchemes], ['cursor', 'vscode']);
  t.equal(config.scopes.catalogue, '{"read":"Read your data","write":"Change your data"}', 'the raw setting stays');
  t.ok(Object.isFrozen(config.policy) && Object.isFrozen(config.policy.resources.configured));

  const names = loadConfig({ SCOPES: 'read write', RESOURCES: 'https://a.example.com https://b.example.com' }).config;
  t.same(
    [...names.policy.scopes.catalogue],
    [
      ['read', 'read'],
      ['write', 'write'],
    ],
  );
  t.equal(names.policy.resources.fallback, 'https://a.example.com', 'no DEFAULT_RESOURCE: the first of RESOURCES');
  const none = loadConfig({}).config.policy;
  t.same(none.resources, { configured: [], fallback: null });
  t.equal(none.scopes.catalogue.size, 0);
  t.equal(none.nativeSchemes.size, 0);
});

t.test('a configuration that cannot start is a misconfigured DomainError', async (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'eighty' }));
  t.ok(err instanceof ConfigError && err instanceof DomainError);
  t.equal((err as ConfigError).code, 'misconfigured');
  t.equal((err as ConfigError).name, 'ConfigError');
});

t.test('production allows http only for the loopback hosts every other check agrees on', async (t) => {
  const prod = { NODE_ENV: 'production', KEY_ENCRYPTION_SECRET: STRONG };
  for (const issuer of [
    'http://127.0.0.2:4000',
    'http://[::1]:4000',
    'http://app.localhost',
    'http://[::ffff:127.0.0.1]',
  ]) {
    t.same(problemsOf({ ...prod, ISSUER: issuer }), [], issuer);
  }
  t.match(problemsOf({ ...prod, ISSUER: 'http://10.0.0.1' }), [/^ISSUER: must be https in production/]);
});

t.test(
  'production refuses secrets the repository publishes, naming the variable; development takes them',
  async (t) => {
    const prod = { NODE_ENV: 'production', ISSUER: 'https://auth.example.com', KEY_ENCRYPTION_SECRET: STRONG };
    for (const published of [...PUBLISHED_SECRETS, `local-only-${STRONG}`]) {
      // A short one is also named too short; the published verdict is there either way.
      for (const [variable, env] of [
        ['KEY_ENCRYPTION_SECRET', { KEY_ENCRYPTION_SECRET: published }],
        ['HANDSHAKE_SECRET', { HANDSHAKE_SECRET: published }],
        ['DCR_INITIAL_ACCESS_TOKEN', { DCR_ENABLED: 'true', DCR_INITIAL_ACCESS_TOKEN: published }],
      ] as const) {
        const problems = problemsOf({ ...prod, ...env });
        t.ok(
          problems.some((p) => p.startsWith(`${variable}: is a value published in the Gatehouse repository`)),
          `${published} is refused as ${variable}: ${problems.join('; ')}`,
        );
      }
      t.ok(isPublishedSecret(published));
    }
    t.match(problemsOf({ ...prod, DATABASE_URL: 'postgres://gatehouse:gatehouse-local-only@db:5432/gatehouse' }), [
      /^DATABASE_URL: its password is a value published in the Gatehouse repository/,
    ]);
    t.same(problemsOf({ ...prod, DATABASE_URL: `postgres://gatehouse:${STRONG}@db:5432/gatehouse` }), []);
    t.same(problemsOf({ ...prod, HANDSHAKE_SECRET: `${STRONG}x` }), [], 'an unpublished strong secret passes');
    t.notOk(isPublishedSecret(''));
    t.same(problemsOf({ HANDSHAKE_SECRET: PUBLISHED_SECRETS[1]! }), [], 'development accepts the local-only defaults');
  },
);

t.test('outside production a published secret is refused once ISSUER is not loopback', async (t) => {
  // docker-compose.yml runs in development mode; pointed at a real issuer with its defaults it must not start.
  const compose = {
    KEY_ENCRYPTION_SECRET: PUBLISHED_SECRETS[0]!,
    HANDSHAKE_SECRET: PUBLISHED_SECRETS[1]!,
    DATABASE_URL: 'postgres://gatehouse:gatehouse-local-only@postgres:5432/gatehouse',
  };
  for (const issuer of ['http://localhost:4000', 'http://127.0.0.1:4000', 'http://app.localhost']) {
    t.same(problemsOf({ ...compose, ISSUER: issuer }), [], `${issuer}: local use`);
  }
  const problems = problemsOf({ ...compose, ISSUER: 'https://auth.example.com' });
  for (const name of ['KEY_ENCRYPTION_SECRET', 'HANDSHAKE_SECRET', 'DATABASE_URL password']) {
    t.ok(
      problems.some(
        (p) => p.startsWith(`${name}: is a value published`) && p.endsWith('(ISSUER is not a loopback URL)'),
      ),
      `${name} is named: ${problems.join('; ')}`,
    );
  }
  t.same(
    problemsOf({
      ...compose,
      ISSUER: 'https://auth.example.com',
      KEY_ENCRYPTION_SECRET: STRONG,
      HANDSHAKE_SECRET: `${STRONG}x`,
      DATABASE_URL: `postgres://gatehouse:${STRONG}@postgres:5432/gatehouse`,
    }),
    [],
    'own secrets pass',
  );
});

t.test('the timeout settings refuse what is not a non-negative whole number, naming the variable', async (t) => {
  for (const name of [
    'REQUEST_TIMEOUT_SECONDS',
    'HEADERS_TIMEOUT_SECONDS',
    'KEEP_ALIVE_TIMEOUT_SECONDS',
    'CONNECTION_TIMEOUT_SECONDS',
    'DATABASE_CONNECT_TIMEOUT_MS',
    'DATABASE_STATEMENT_TIMEOUT_MS',
    'DATABASE_QUERY_TIMEOUT_MS',
  ]) {
    for (const bad of ['-1', '1.5', 'soon']) {
      const problems = problemsOf({ [name]: bad });
      t.ok(
        problems.some((p) => p.startsWith(`${name}:`)),
        `${name}=${bad} is refused: ${problems.join('; ')}`,
      );
    }
  }
});

t.test('every numeric setting refuses what is not a whole number in its range, naming the variable', async (t) => {
  // Derived from the schema, so a setting added later is covered without being listed here.
  const numeric = schemaLeaves().filter((l) =>
    ['non-negative-int', 'positive-int', 'tcp-port'].includes(String(l.format)),
  );
  t.ok(numeric.length >= 30, `found ${numeric.length} numeric settings`);
  for (const { env, format } of numeric) {
    for (const bad of [
      '-1',
      '1.5',
      'soon',
      ...(format === 'positive-int' ? ['0'] : []),
      ...(format === 'tcp-port' ? ['65536'] : []),
    ]) {
      const problems = problemsOf({ [env]: bad });
      t.ok(
        problems.some((p) => p.startsWith(`${env}:`)),
        `${env}=${bad} is refused: ${problems.join('; ')}`,
      );
    }
  }
});

t.test('every boolean setting refuses what is not a boolean, naming the variable', async (t) => {
  const booleans = schemaLeaves().filter((l) => l.format === 'strict-boolean');
  t.ok(booleans.length >= 10, `found ${booleans.length} boolean settings`);
  for (const { env } of booleans) {
    const problems = problemsOf({ [env]: 'maybe' });
    t.ok(
      problems.some((p) => p.startsWith(`${env}:`)),
      `${env}=maybe is refused: ${problems.join('; ')}`,
    );
  }
});
