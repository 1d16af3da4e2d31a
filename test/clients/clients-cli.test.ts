import { join } from 'node:path';
import t from 'tap';
import { ClientsUsageError, clientsCommand, runClientsCommand } from '../../src/cli/clients.js';
import { authenticateClient } from '../../src/oauth/client-authentication.js';
import { findClientById } from '../../src/repositories/client.repository.js';
import { type Clients, createClients } from '../../src/services/clients/index.js';
import { TEST_DATABASE_URL } from '../helper.js';
import { basic, clientConfig, migratedDatabase, unique } from '../fixtures/clients.js';

const config = clientConfig();

/** Runs `gatehouse clients <args>` with parsed flags, as the CLI does after parseArgs. */
async function cli(args: string[], options: Record<string, unknown> = {}, json = false): Promise<string | object> {
  const handle = await migratedDatabase();
  return clientsCommand(args, { config, handle, json, options: { json, ...options } });
}

/** `gatehouse clients <args>` in text mode: what it prints. */
async function cliText(args: string[], options: Record<string, unknown> = {}): Promise<string> {
  const out = await cli(args, options);
  if (typeof out !== 'string') throw new Error(`expected text, got ${JSON.stringify(out)}`);
  return out;
}

async function cliJson<T = Record<string, unknown>>(args: string[], options: Record<string, unknown> = {}): Promise<T> {
  return (await cli(args, options, true)) as T;
}

/** A fresh service (a new process) to check what a client can do. */
async function fresh(): Promise<Clients> {
  return createClients((await migratedDatabase()).db, config);
}

const machineFlags = { name: 'Nightly export', 'grant-type': ['client_credentials'], scope: ['read write'] };

t.test('create prints the client_id and the secret once, and the secret works', async (t) => {
  const text = await cliText(['create'], machineFlags);
  t.type(text, 'string');
  const id = /client_id: +(\S+)/.exec(text)?.[1];
  const secret = /client_secret: (\S+)/.exec(text)?.[1];
  t.ok(id && secret, text);
  t.match(text, /shown only this once/);
  const row = await findClientById((await migratedDatabase()).db, id!);
  t.same(row?.scopes, ['read', 'write'], '--scope "read write" is two scopes');
  t.equal(row?.source, 'admin');
  t.ok(await authenticateClient({ authorization: basic(id!, secret!), body: {} }, await fresh()));
});

t.test('create --json returns the client (without its hash) and client_secret', async (t) => {
  const out = await cliJson<{ client: Record<string, unknown>; client_secret: string }>(['create'], {
    ...machineFlags,
    'client-id': unique('chosen'),
    'auth-method': 'client_secret_post',
    resource: ['https://api.example.com/'],
  });
  t.match(out.client.client_id, /^chosen-/);
  t.equal(out.client.token_endpoint_auth_method, 'client_secret_post');
  t.same(out.client.resources, ['https://api.example.com']);
  t.notOk('secret_hash' in out.client, 'the hash is not shown');
  t.match(out.client_secret, /^[A-Za-z0-9_-]{43}$/);
  const auth = await authenticateClient(
    { authorization: undefined, body: { client_id: out.client.client_id, client_secret: out.client_secret } },
    await fresh(),
  );
  t.equal(auth.method, 'client_secret_post');
});

t.test('a public native client has no secret', async (t) => {
  const out = await cliJson<{ client: Record<string, unknown>; client_secret?: string }>(['create'], {
    name: 'Desktop',
    'application-type': 'native',
    'auth-method': 'none',
    'redirect-uri': ['http://127.0.0.1/callback', 'com.example.desktop:/cb'],
    'grant-type': ['authorization_code', 'refresh_token'],
    'skip-consent': true,
  });
  t.notOk('client_secret' in out);
  t.same(out.client.redirect_uris, ['http://127.0.0.1/callback', 'com.example.desktop:/cb']);
  t.same(out.client.response_types, ['code']);
  t.equal(out.client.skip_consent, true);
  t.match(
    await cli(['create'], {
      name: 'Desktop 2',
      'application-type': 'native',
      'auth-method': 'none',
      'redirect-uri': ['http://[::1]/cb'],
    }),
    /public client: no secret/,
  );
});

t.test(
  'create without --grant-type gives a code-flow client refresh tokens; a --grant-type list is kept',
  async (t) => {
    const web = await cliJson<{ client: Record<string, unknown> }>(['create'], {
      name: 'Web app',
      'redirect-uri': ['https://app.example.com/cb'],
    });
    t.same(web.client.grant_types, ['authorization_code', 'refresh_token'], 'refresh tokens by default');
    const codeOnly = await cliJson<{ client: Record<string, unknown> }>(['create'], {
      name: 'Code only',
      'redirect-uri': ['https://app.example.com/cb'],
      'grant-type': ['authorization_code'],
    });
    t.same(codeOnly.client.grant_types, ['authorization_code'], 'told otherwise: no refresh tokens');
  },
);

t.test('--dpop-bound-access-tokens sets RFC 9449 §5.2 client metadata; --no-… clears it', async (t) => {
  const out = await cliJson<{ client: Record<string, unknown> }>(['create'], {
    ...machineFlags,
    name: 'DPoP machine',
    'dpop-bound-access-tokens': true,
  });
  t.equal(out.client.dpop_bound_access_tokens, true);
  const id = String(out.client.client_id);
  await cli(['update', id], { 'no-dpop-bound-access-tokens': true });
  t.equal((await cliJson(['show', id])).dpop_bound_access_tokens, false);
  await t.rejects(
    cli(['create'], { ...machineFlags, 'dpop-bound-access-tokens': true, 'no-dpop-bound-access-tokens': true }),
    { name: 'ClientsUsageError', message: /contradict/ },
  );
});

t.test(
  'a dynamically registered client is shown and listed without its secret or registration token hashes',
  async (t) => {
    const service = await fresh();
    const { client } = await service.admin.create(
      { name: 'Registered', redirect_uris: ['https://app.example.com/cb'] },
      { source: 'registration', registrationAccessTokenHash: 'A'.repeat(43) },
    );
    const shown = await cliJson(['show', client.client_id]);
    t.equal(shown.source, 'registration');
    t.notOk('secret_hash' in shown);
    t.notOk('registration_access_token_hash' in shown, 'the registration access token hash is not shown');
    const listed = await cliJson<Array<Record<string, unknown>>>(['list']);
    t.notOk(
      listed.some((c) => 'registration_access_token_hash' in c || 'secret_hash' in c),
      'no hashes in the list',
    );
    const text = await cliText(['show', client.client_id]);
    t.notMatch(text, /hash/);
    t.notMatch(text, /A{43}/);
  },
);

t.test('bad metadata names the field and the flag', async (t) => {
  await t.rejects(cli(['create'], { name: 'Web', 'redirect-uri': ['http://app.example.com/cb'] }), {
    message: /^invalid client: redirect_uris\[0\] \(--redirect-uri\): must use https/,
  });
  await t.rejects(cli(['create'], { 'grant-type': ['client_credentials'] }), {
    message: /^invalid client: name \(--name\): is required$/,
  });
  await t.rejects(cli(['create'], { ...machineFlags, scope: ['read', 'root'] }), {
    message: /scopes\[1\] \(--scope\): "root" is not in the scope catalogue/,
  });
});

t.test('list and show', async (t) => {
  const created = await cliJson<{ client: { client_id: string } }>(['create'], {
    ...machineFlags,
    name: 'Listed client',
  });
  const id = created.client.client_id;
  const listed = await cliJson<Array<Record<string, unknown>>>(['list']);
  const mine = listed.find((c) => c.client_id === id);
  t.equal(mine?.name, 'Listed client');
  t.notOk(
    listed.some((c) => 'secret_hash' in c),
    'no hashes in the list',
  );
  t.match(
    await cli(['list']),
    new RegExp(`^${id}  "Listed client"  client_secret_basic  client_credentials  admin  enabled$`, 'm'),
  );

  const shown = await cliJson(['show', id]);
  t.equal(shown.client_id, id);
  t.same(shown.scopes, ['read', 'write']);
  const text = await cliText(['show', id]);
  t.match(text, new RegExp(`^client_id\\s+${id}$`, 'm'));
  t.match(text, /^scopes\s+read write$/m);
  t.match(text, /^logo_uri\s+-$/m);
  t.notMatch(text, /secret_hash/);
  await t.rejects(cli(['show', unique('missing')]), { message: /^no such client: missing-/ });
});

t.test('update changes only the given fields, and --disable / --enable switch the client', async (t) => {
  const created = await cliJson<{ client: { client_id: string }; client_secret: string }>(['create'], machineFlags);
  const id = created.client.client_id;
  const text = await cli(['update', id], { name: 'Renamed', scope: ['read'] });
  t.equal(text, `Updated client ${id}.`);
  const after = await cliJson(['show', id]);
  t.equal(after.name, 'Renamed');
  t.same(after.scopes, ['read']);
  t.same(after.grant_types, ['client_credentials'], 'untouched fields stay');

  t.match(await cli(['update', id], { disable: true }), /\(disabled\)/);
  await t.rejects(authenticateClient({ authorization: basic(id, created.client_secret), body: {} }, await fresh()), {
    name: 'OAuthError',
    error: 'invalid_client',
  });
  const enabled = await cliJson<{ client: { disabled_at: unknown } }>(['update', id], { enable: true });
  t.equal(enabled.client.disabled_at, null);
  t.ok(await authenticateClient({ authorization: basic(id, created.client_secret), body: {} }, await fresh()));

  await t.rejects(cli(['update', id], { 'grant-type': ['password'] }), {
    message: /grant_types\[0\] \(--grant-type\)/,
  });
  await t.rejects(cli(['update', id]), { name: 'ClientsUsageError', message: /needs at least one flag/ });
  await t.rejects(cli(['update', id], { enable: true, disable: true }), {
    name: 'ClientsUsageError',
    message: /contradict/,
  });
  await t.rejects(cli(['update', unique('missing')], { name: 'x' }), { message: /^no such client/ });
});

t.test('update to a confidential method prints the new secret once', async (t) => {
  const created = await cliJson<{ client: { client_id: string } }>(['create'], {
    name: 'Was public',
    'application-type': 'native',
    'auth-method': 'none',
    'redirect-uri': ['http://127.0.0.1/cb'],
  });
  const id = created.client.client_id;
  const text = await cliText(['update', id], { 'auth-method': 'client_secret_basic' });
  const secret = /client_secret: (\S+)/.exec(text)?.[1];
  t.ok(secret, text);
  t.ok(await authenticateClient({ authorization: basic(id, secret!), body: {} }, await fresh()));
});

t.test('rotate-secret prints a new secret; the old one stops working', async (t) => {
  const created = await cliJson<{ client: { client_id: string }; client_secret: string }>(['create'], machineFlags);
  const id = created.client.client_id;
  const rotated = await cliJson<{ client_id: string; client_secret: string }>(['rotate-secret', id]);
  t.equal(rotated.client_id, id);
  t.not(rotated.client_secret, created.client_secret);
  const clients = await fresh();
  await t.rejects(authenticateClient({ authorization: basic(id, created.client_secret), body: {} }, clients), {
    name: 'OAuthError',
    error: 'invalid_client',
  });
  t.ok(await authenticateClient({ authorization: basic(id, rotated.client_secret), body: {} }, clients));
  t.match(await cli(['rotate-secret', id]), /the old one no longer works\.\nclient_id: +\S+\nclient_secret: \S+/);
});

t.test('delete removes the client', async (t) => {
  const created = await cliJson<{ client: { client_id: string } }>(['create'], machineFlags);
  const id = created.client.client_id;
  t.equal(await cli(['delete', id]), `Deleted client ${id}.`);
  t.equal(await findClientById((await migratedDatabase()).db, id), undefined);
  await t.rejects(cli(['delete', id]), { message: `no such client: ${id}` });
});

t.test('usage mistakes are ClientsUsageError', async (t) => {
  await t.rejects(cli(['frobnicate']), { name: 'ClientsUsageError', message: 'unknown clients action: frobnicate' });
  t.ok(
    (await cli(['frobnicate']).catch((err: unknown) => err)) instanceof ClientsUsageError,
    'the class main.ts turns into exit code 2',
  );
  await t.rejects(cli(['show']), { name: 'ClientsUsageError', message: 'clients show needs a client_id' });
  await t.rejects(cli(['delete', 'a', 'b']), { name: 'ClientsUsageError', message: 'unexpected argument: b' });
  await t.rejects(cli(['create'], { ...machineFlags, disable: true }), {
    name: 'ClientsUsageError',
    message: /go with clients update/,
  });
  await t.rejects(cli(['create'], { ...machineFlags, 'skip-consent': true, 'no-skip-consent': true }), {
    name: 'ClientsUsageError',
    message: /contradict/,
  });
});

t.test('runClientsCommand opens and migrates the database itself', async (t) => {
  const own = TEST_DATABASE_URL ? clientConfig() : clientConfig({ DATA_DIR: join(t.testdir(), 'pglite') });
  const out = (await runClientsCommand(own, ['create'], { json: true, ...machineFlags })) as {
    client: { client_id: string };
  };
  const listed = (await runClientsCommand(own, ['list'], { json: true })) as Array<{ client_id: string }>;
  t.ok(listed.some((c) => c.client_id === out.client.client_id));
});

t.test('private_key_jwt and the FAPI 2.0 profile from the command line', async (t) => {
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
    y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
    kid: 'k1',
  };
  const out = await cliJson<{ client: Record<string, unknown>; client_secret?: string }>(['create'], {
    ...machineFlags,
    'auth-method': 'private_key_jwt',
    'jwks-uri': 'https://machine.example.com/jwks.json',
    'auth-signing-alg': 'ES256',
  });
  t.equal(out.client.token_endpoint_auth_method, 'private_key_jwt');
  t.equal(out.client.jwks_uri, 'https://machine.example.com/jwks.json');
  t.equal(out.client.token_endpoint_auth_signing_alg, 'ES256');
  t.notOk(out.client_secret, 'no secret is printed: the client has none');
  const id = out.client.client_id as string;

  // --jwks replaces --jwks-uri (never both, RFC 7591 §2); the profile needs PAR, which it turns on.
  const updated = await cliJson<{ client: Record<string, unknown> }>(['update', id], {
    jwks: JSON.stringify({ keys: [jwk] }),
    'security-profile': 'fapi2',
  });
  t.same(updated.client.jwks, { keys: [jwk] });
  t.equal(updated.client.jwks_uri, null);
  t.equal(updated.client.security_profile, 'fapi2');
  t.equal(updated.client.require_pushed_authorization_requests, true);
  t.equal(updated.client.dpop_bound_access_tokens, true, 'and DPoP-bound tokens');
  await t.rejects(
    cli(['update', id], { 'no-dpop-bound-access-tokens': true }),
    /dpop_bound_access_tokens: must be true/,
  );
  await t.rejects(
    cli(['update', id], { 'no-require-par': true }),
    /require_pushed_authorization_requests: must be true/,
  );
  await t.rejects(cli(['update', id], { 'auth-signing-alg': 'RS256' }), /--auth-signing-alg.*FAPI 2.0/);
  await t.rejects(cli(['update', id], { jwks: '{not json' }), ClientsUsageError);
  await t.rejects(cli(['rotate-secret', id]), /private_key_jwt and has no secret/);
  const cleared = await cliJson<{ client: Record<string, unknown> }>(['update', id], { 'security-profile': 'none' });
  t.equal(cleared.client.security_profile, null);
});
