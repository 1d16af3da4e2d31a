import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { ClientsFileError, applyClientsFile } from '../../src/services/clients/clients-file.js';
import { authenticateClient } from '../../src/oauth/client-authentication.js';
import { generateClientSecret, hashSecret } from '../../src/oauth/secrets.js';
import { findClientById } from '../../src/repositories/client.repository.js';
import { createClients } from '../../src/services/clients/index.js';
import { buildTestApp } from '../helper.js';
import { CLIENT_ENV, basic, clientConfig, machineClient, migratedDatabase, unique } from '../fixtures/clients.js';

interface Logged {
  level: 'info' | 'warn';
  obj: Record<string, unknown>;
  msg: string;
}

function capture(): {
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void };
  lines: Logged[];
} {
  const lines: Logged[] = [];
  return {
    lines,
    log: {
      info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    },
  };
}

/** Writes a clients file in the test's directory; returns a config pointing at it. */
function clientsFile(t: Tap.Test, clients: unknown[] | Record<string, unknown>, name = 'clients.json') {
  const dir = t.testdir();
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(Array.isArray(clients) ? { clients } : clients));
  return { dir, path, config: clientConfig({ CLIENTS_FILE: path }) };
}

async function apply(config: ReturnType<typeof clientConfig>) {
  const { db } = await migratedDatabase();
  const { log, lines } = capture();
  return { result: await applyClientsFile(db, config, log), lines };
}

async function applyError(config: ReturnType<typeof clientConfig>): Promise<ClientsFileError> {
  const { db } = await migratedDatabase();
  try {
    await applyClientsFile(db, config, capture().log);
  } catch (err) {
    if (err instanceof ClientsFileError) return err;
    throw err;
  }
  throw new Error('the file was applied');
}

t.test('clients in the file are created (source file) and authenticate with their secret', async (t) => {
  const { db } = await migratedDatabase();
  const secret = generateClientSecret();
  const machine = unique('machine');
  const spa = unique('spa');
  const { config } = clientsFile(t, [
    { client_id: machine, ...machineClient({ scopes: ['read'] }), secret_hash: hashSecret(secret) },
    {
      client_id: spa,
      name: 'SPA',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['https://spa.example.com/cb'],
      skip_consent: true,
    },
  ]);
  const { result, lines } = await apply(config);
  t.same(result, { created: [machine, spa], updated: [], unchanged: [] });
  const row = await findClientById(db, machine);
  t.equal(row?.source, 'file');
  t.same(row?.scopes, ['read']);
  t.equal((await findClientById(db, spa))?.skip_consent, true);
  const clients = createClients(db, config);
  t.ok(await authenticateClient({ authorization: basic(machine, secret), body: {} }, clients));
  t.match(lines, [{ level: 'info', msg: 'applied CLIENTS_FILE', obj: { created: [machine, spa] } }]);
  t.notMatch(JSON.stringify(lines), secret, 'the secret is never logged');
});

t.test('applying the same file again changes nothing', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique('same');
  const { config } = clientsFile(t, [
    { client_id: id, ...machineClient(), secret_hash: hashSecret(generateClientSecret()) },
  ]);
  await apply(config);
  const before = await findClientById(db, id);
  const { result } = await apply(config);
  t.same(result, { created: [], updated: [], unchanged: [id] });
  t.same(await findClientById(db, id), before, 'not even updated_at moved');
});

t.test('a changed entry updates the client; a new secret_hash rotates its secret', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique('changed');
  const first = generateClientSecret();
  const second = generateClientSecret();
  const dir = t.testdir();
  const path = join(dir, 'clients.json');
  const config = clientConfig({ CLIENTS_FILE: path });
  writeFileSync(
    path,
    JSON.stringify({ clients: [{ client_id: id, ...machineClient({ name: 'v1' }), secret_hash: hashSecret(first) }] }),
  );
  await apply(config);
  writeFileSync(
    path,
    JSON.stringify({
      clients: [{ client_id: id, ...machineClient({ name: 'v2', scopes: ['write'] }), secret_hash: hashSecret(first) }],
    }),
  );
  t.same((await apply(config)).result.updated, [id]);
  const renamed = await findClientById(db, id);
  t.equal(renamed?.name, 'v2');
  t.same(renamed?.scopes, ['write']);
  t.equal(renamed?.secret_rotated_at, null, 'same secret: not rotated');

  writeFileSync(
    path,
    JSON.stringify({
      clients: [
        { client_id: id, ...machineClient({ name: 'v2', scopes: ['write'] }), secret_hash: hashSecret(second) },
      ],
    }),
  );
  t.same((await apply(config)).result.updated, [id]);
  t.ok((await findClientById(db, id))?.secret_rotated_at instanceof Date);
  const clients = createClients(db, config);
  t.ok(await authenticateClient({ authorization: basic(id, second), body: {} }, clients), 'the new secret works');
  await t.rejects(
    authenticateClient({ authorization: basic(id, first), body: {} }, clients),
    { name: 'OAuthError', error: 'invalid_client' },
    'the old one does not',
  );
});

t.test('secret_file holds the secret (relative to the clients file); its trailing newline is ignored', async (t) => {
  const { db } = await migratedDatabase();
  const id = unique('from-file');
  const secret = generateClientSecret();
  const { dir, config } = clientsFile(t, [
    {
      client_id: id,
      ...machineClient({ token_endpoint_auth_method: 'client_secret_post' }),
      secret_file: 'machine.secret',
    },
  ]);
  writeFileSync(join(dir, 'machine.secret'), `${secret}\n`);
  await apply(config);
  t.equal((await findClientById(db, id))?.secret_hash, hashSecret(secret));
  const clients = createClients(db, config);
  t.ok(await authenticateClient({ authorization: undefined, body: { client_id: id, client_secret: secret } }, clients));
});

t.test('a plaintext client_secret is refused, pointing at secret_hash and secret_file', async (t) => {
  const id = unique('plain');
  const { config } = clientsFile(t, [
    { client_id: id, ...machineClient(), client_secret: 'hunter2-hunter2-hunter2-hunter2-hunter2' },
  ]);
  const err = await applyError(config);
  t.match(err.message, `CLIENTS_FILE: client "${id}" (clients[0]): client_secret: plaintext secrets are not allowed`);
  t.match(err.message, /secret_hash/);
  t.match(err.message, /secret_file/);
  t.notMatch(err.message, /hunter2/, 'the secret is not echoed');
  t.equal(await findClientById((await migratedDatabase()).db, id), undefined);
});

t.test('a bad entry stops everything, naming the client and the field; nothing is applied', async (t) => {
  const { db } = await migratedDatabase();
  const good = unique('good');
  const bad = unique('bad');
  const hash = hashSecret(generateClientSecret());
  const cases: Array<[unknown[], RegExp]> = [
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, name: 'Bad', redirect_uris: ['http://bad.example/cb'], secret_hash: hash },
      ],
      new RegExp(`client "${bad}" \\(clients\\[1\\]\\): redirect_uris\\[0\\]: must use https`),
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { ...machineClient(), secret_hash: hash },
      ],
      /clients\[1\]: client_id: is required/,
    ],
    [[{ client_id: good, ...machineClient(), secret_hash: hash }, 'nope'], /clients\[1\]: client: must be an object/],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: good, ...machineClient(), secret_hash: hash },
      ],
      new RegExp(`client "${good}" \\(clients\\[1\\]\\): client_id: appears more than once`),
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, ...machineClient() },
      ],
      new RegExp(
        `client "${bad}" .*: secret_hash: required for token_endpoint_auth_method client_secret_basic \\(or secret_file\\)`,
      ),
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, ...machineClient(), secret_hash: 'abc' },
      ],
      /secret_hash: must be the SHA-256 of the secret/,
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, ...machineClient(), secret_hash: hash, secret_file: '/x' },
      ],
      /secret_hash: give secret_hash or secret_file, not both/,
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        {
          client_id: bad,
          name: 'P',
          token_endpoint_auth_method: 'none',
          redirect_uris: ['https://a.example/cb'],
          secret_hash: hash,
        },
      ],
      /secret_hash: a public client .* has no secret/,
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, ...machineClient(), secret_file: 'missing.secret' },
      ],
      /secret_file: cannot read .*missing\.secret \(ENOENT\)/,
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, ...machineClient({ scopes: ['nope'] }), secret_hash: hash },
      ],
      /scopes\[0\]: "nope" is not in the scope catalogue/,
    ],
    [
      [
        { client_id: good, ...machineClient(), secret_hash: hash },
        { client_id: bad, ...machineClient({ redirect_uri: 'https://a.example' }), secret_hash: hash },
      ],
      /redirect_uri: is not a known client metadata field/,
    ],
  ];
  for (const [clients, expected] of cases) {
    const { config } = clientsFile(t, clients);
    const err = await applyError(config);
    t.match(err.message, expected);
    t.equal(await findClientById(db, good), undefined, `nothing applied (${expected.source.slice(0, 40)})`);
  }
});

t.test('a weak secret in a secret_file is refused without echoing it', async (t) => {
  const id = unique('weak');
  const { dir, config } = clientsFile(t, [
    { client_id: id, ...machineClient(), secret_file: join(t.testdirName, 'weak.secret') },
  ]);
  writeFileSync(join(dir, 'weak.secret'), 'password123\n');
  const err = await applyError(config);
  t.match(
    err.message,
    new RegExp(`client "${id}" .*secret_file: the secret in .*weak\\.secret must be at least 32 characters`),
  );
  t.notMatch(err.message, /password123/);
});

t.test('the file must be readable JSON of the documented shape', async (t) => {
  const dir = t.testdir({
    'broken.json': '{ "clients": [',
    'array.json': '[]',
    'extra.json': '{"clients":[],"client":[]}',
  });
  const cases: Array<[string, RegExp]> = [
    ['missing.json', /^CLIENTS_FILE: cannot read .*missing\.json \(ENOENT\)$/],
    ['broken.json', /broken\.json is not valid JSON/],
    ['array.json', /must be a JSON object \{ "clients": \[ \.\.\. \] \}/],
    ['extra.json', /unknown top-level field "client"/],
  ];
  for (const [name, expected] of cases)
    t.match((await applyError(clientConfig({ CLIENTS_FILE: join(dir, name) }))).message, expected);
});

t.test('clients from other sources are never taken over or touched', async (t) => {
  const { db } = await migratedDatabase();
  const { admin } = createClients(db, clientConfig());
  const taken = unique('admin-made');
  const fresh = unique('fresh');
  const { client } = await admin.create(machineClient({ name: 'Made by admin' }), { clientId: taken });
  const { config } = clientsFile(t, [
    { client_id: fresh, ...machineClient(), secret_hash: hashSecret(generateClientSecret()) },
    { client_id: taken, ...machineClient({ name: 'From file' }), secret_hash: hashSecret(generateClientSecret()) },
  ]);
  const err = await applyError(config);
  t.match(err.message, new RegExp(`client "${taken}": client_id is already used by a client created by admin`));
  t.same(await findClientById(db, taken), client, 'the admin client is as it was');
  t.equal(await findClientById(db, fresh), undefined, 'the transaction rolled back the entry before it');

  const other = unique('other-admin');
  await admin.create(machineClient(), { clientId: other });
  const ok = clientsFile(
    t,
    [{ client_id: fresh, ...machineClient(), secret_hash: hashSecret(generateClientSecret()) }],
    'ok.json',
  );
  await apply(ok.config);
  t.equal((await findClientById(db, other))?.source, 'admin', 'a client not in the file is left alone');
});

t.test('file clients dropped from the file are kept and reported', async (t) => {
  const { db } = await migratedDatabase();
  const kept = unique('kept');
  const dropped = unique('dropped');
  const hash = hashSecret(generateClientSecret());
  const first = clientsFile(t, [
    { client_id: kept, ...machineClient(), secret_hash: hash },
    { client_id: dropped, ...machineClient(), secret_hash: hash },
  ]);
  await apply(first.config);
  const second = clientsFile(t, [{ client_id: kept, ...machineClient(), secret_hash: hash }], 'second.json');
  const { lines } = await apply(second.config);
  t.ok(await findClientById(db, dropped), 'not deleted');
  const warning = lines.find((l) => l.level === 'warn');
  t.match(warning, { msg: /no longer in it/ });
  t.ok((warning?.obj.clients as string[]).includes(dropped));
});

t.test('the app applies CLIENTS_FILE at start and serves its clients from app.clients', async (t) => {
  const id = unique('at-start');
  const secret = generateClientSecret();
  const { path } = clientsFile(t, [{ client_id: id, ...machineClient(), secret_hash: hashSecret(secret) }]);
  const app = await buildTestApp(t, { ...CLIENT_ENV, CLIENTS_FILE: path });
  t.equal((await app.clients.get(id))?.source, 'file');
  const { client } = await authenticateClient(
    { authorization: basic(id, secret), body: {} },
    { registry: app.clients, usage: app.clientUsage },
  );
  t.equal(client.client_id, id);
});

t.test('a bad CLIENTS_FILE stops the app from starting, and nothing is applied', async (t) => {
  const database = await migratedDatabase();
  const good = unique('good');
  const { path } = clientsFile(t, [
    { client_id: good, ...machineClient(), secret_hash: hashSecret(generateClientSecret()) },
    {
      client_id: 'broken',
      ...machineClient({ grant_types: ['implicit'] }),
      secret_hash: hashSecret(generateClientSecret()),
    },
  ]);
  await t.rejects(buildApp(clientConfig({ CLIENTS_FILE: path }), { database }), {
    name: 'ClientsFileError',
    message: /client "broken" \(clients\[1\]\): grant_types\[0\]: must be one of/,
  });
  t.equal(await findClientById(database.db, good), undefined);
});
