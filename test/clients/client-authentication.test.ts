import t from 'tap';
import { authenticateClient } from '../../src/oauth/client-authentication.js';
import { OAuthError } from '../../src/oauth/errors.js';
import { hashSecret } from '../../src/oauth/secrets.js';
import { findClientById, rotateClientSecret } from '../../src/repositories/client.repository.js';
import { createClients } from '../../src/services/clients/index.js';
import {
  basic,
  clientConfig,
  countingDb,
  formEncode,
  machineClient,
  migratedDatabase,
  publicClient,
  unique,
} from '../fixtures/clients.js';

const CHALLENGE = 'Basic realm="gatehouse"';

async function service() {
  const { db } = await migratedDatabase();
  const counting = countingDb(db);
  const clients = createClients(counting.db, clientConfig());
  return { db, clients, selects: () => counting.counts.get('SelectQueryNode') ?? 0 };
}

/** The OAuthError authentication fails with. */
async function failure(t: Tap.Test, promise: Promise<unknown>): Promise<OAuthError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  t.fail('authentication succeeded');
  throw new Error('authentication succeeded');
}

async function expectInvalidClient(
  t: Tap.Test,
  promise: Promise<unknown>,
  challenge: boolean,
  description?: RegExp,
): Promise<void> {
  const err = await failure(t, promise);
  t.equal(err.error, 'invalid_client');
  t.equal(err.status, 401);
  if (challenge) t.equal(err.headers['www-authenticate'], CHALLENGE, 'Basic challenge (RFC 6749 §5.2)');
  else t.notOk('www-authenticate' in err.headers, 'no Basic challenge when Basic was not attempted');
  if (description) t.match(err.description, description);
}

async function expectInvalidRequest(t: Tap.Test, promise: Promise<unknown>, description: RegExp): Promise<void> {
  const err = await failure(t, promise);
  t.equal(err.error, 'invalid_request');
  t.equal(err.status, 400);
  t.match(err.description, description);
}

t.test('client_secret_basic succeeds with the registered secret', async (t) => {
  const { clients } = await service();
  const { client, secret } = await clients.admin.create(machineClient());
  const result = await authenticateClient({ authorization: basic(client.client_id, secret!), body: {} }, clients);
  t.equal(result.method, 'client_secret_basic');
  t.equal(result.client.client_id, client.client_id);
  t.same(result.client.grant_types, ['client_credentials']);
  // Also the scheme name in any case, and a body client_id that agrees with the header.
  const lower = basic(client.client_id, secret!).replace('Basic', 'bAsIc');
  t.equal(
    (await authenticateClient({ authorization: lower, body: { client_id: client.client_id } }, clients)).method,
    'client_secret_basic',
  );
});

t.test('client_secret_post succeeds with client_id and client_secret in the body', async (t) => {
  const { clients } = await service();
  const { client, secret } = await clients.admin.create(
    machineClient({ token_endpoint_auth_method: 'client_secret_post' }),
  );
  const result = await authenticateClient(
    { authorization: undefined, body: { client_id: client.client_id, client_secret: secret } },
    clients,
  );
  t.equal(result.method, 'client_secret_post');
  t.equal(result.client.client_id, client.client_id);
});

t.test('none: a public client names itself with client_id alone', async (t) => {
  const { clients } = await service();
  const { client } = await clients.admin.create(publicClient());
  const result = await authenticateClient(
    { authorization: undefined, body: { client_id: client.client_id, grant_type: 'authorization_code' } },
    clients,
  );
  t.equal(result.method, 'none');
  t.equal(result.client.client_id, client.client_id);
});

t.test('a wrong secret is invalid_client, with the same description as an unknown client', async (t) => {
  const { clients } = await service();
  const basicClient = await clients.admin.create(machineClient());
  const postClient = await clients.admin.create(machineClient({ token_endpoint_auth_method: 'client_secret_post' }));
  const wrong = 'x'.repeat(43);
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(basicClient.client.client_id, wrong), body: {} }, clients),
    true,
    /^client authentication failed$/,
  );
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(basicClient.client.client_id, ''), body: {} }, clients),
    true,
    /^client authentication failed$/,
  );
  await expectInvalidClient(
    t,
    authenticateClient(
      { authorization: undefined, body: { client_id: postClient.client.client_id, client_secret: wrong } },
      clients,
    ),
    false,
    /^client authentication failed$/,
  );
  const unknown = unique('nobody');
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(unknown, wrong), body: {} }, clients),
    true,
    /^client authentication failed$/,
  );
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: unknown, client_secret: wrong } }, clients),
    false,
    /^client authentication failed$/,
  );
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: unknown } }, clients),
    false,
    /^client authentication failed$/,
  );
});

t.test('a disabled client cannot authenticate, and can again once enabled', async (t) => {
  const { clients } = await service();
  const { client, secret } = await clients.admin.create(machineClient());
  const pub = await clients.admin.create(publicClient());
  await clients.admin.setDisabled(client.client_id, true);
  await clients.admin.setDisabled(pub.client.client_id, true);
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(client.client_id, secret!), body: {} }, clients),
    true,
    /^client authentication failed$/,
  );
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: pub.client.client_id } }, clients),
    false,
    /^client authentication failed$/,
  );
  await clients.admin.setDisabled(client.client_id, false);
  t.ok(await authenticateClient({ authorization: basic(client.client_id, secret!), body: {} }, clients));
});

t.test('a client must use exactly the method it registered', async (t) => {
  const { clients } = await service();
  const basicClient = await clients.admin.create(machineClient());
  const postClient = await clients.admin.create(machineClient({ token_endpoint_auth_method: 'client_secret_post' }));
  const pub = await clients.admin.create(publicClient());
  // The same description as an unknown client, so a mismatch does not confirm that an id exists.
  const mismatch = /^client authentication failed$/;
  // Registered for basic, presents post credentials (the right secret).
  await expectInvalidClient(
    t,
    authenticateClient(
      {
        authorization: undefined,
        body: { client_id: basicClient.client.client_id, client_secret: basicClient.secret },
      },
      clients,
    ),
    false,
    mismatch,
  );
  // Registered for post, presents basic.
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(postClient.client.client_id, postClient.secret!), body: {} }, clients),
    true,
    mismatch,
  );
  // A confidential client may not drop its secret and pass as public.
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: basicClient.client.client_id } }, clients),
    false,
    mismatch,
  );
  // A public client presenting a secret of any kind.
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(pub.client.client_id, 'anything'), body: {} }, clients),
    true,
    mismatch,
  );
  await expectInvalidClient(
    t,
    authenticateClient(
      { authorization: undefined, body: { client_id: pub.client.client_id, client_secret: 'x' } },
      clients,
    ),
    false,
    mismatch,
  );
});

t.test('malformed Basic credentials are invalid_client 401 with a Basic challenge', async (t) => {
  const { clients } = await service();
  const { client, secret } = await clients.admin.create(machineClient());
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  const cases: Array<[string, string, RegExp]> = [
    ['not base64', 'Basic !!!notbase64!!!', /not base64/],
    ['base64 with a bad length', 'Basic abcde', /not base64/],
    ['no colon', `Basic ${b64(client.client_id)}`, /no colon/],
    ['empty client id', `Basic ${b64(`:${secret}`)}`, /empty client_id/],
    ['bad percent-encoding', `Basic ${b64(`${client.client_id}%zz:${secret}`)}`, /percent-encoding/],
    ['not UTF-8', `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`, /UTF-8/],
    ['no credentials after the scheme', 'Basic', /malformed Basic credentials/],
    ['two tokens', `Basic ${b64(`${client.client_id}:${secret}`)} extra`, /malformed Basic credentials/],
    ['another scheme', `Bearer ${secret}`, /only the Basic authentication scheme/],
    ['empty header', '', /only the Basic authentication scheme/],
  ];
  for (const [label, header, description] of cases) {
    t.comment(label);
    await expectInvalidClient(t, authenticateClient({ authorization: header, body: {} }, clients), true, description);
  }
});

t.test('more than one method at once is invalid_request (RFC 6749 §2.3)', async (t) => {
  const { clients } = await service();
  const { client, secret } = await clients.admin.create(machineClient());
  await expectInvalidRequest(
    t,
    authenticateClient(
      { authorization: basic(client.client_id, secret!), body: { client_id: client.client_id, client_secret: secret } },
      clients,
    ),
    /more than one authentication method/,
  );
  const other = await clients.admin.create(machineClient());
  await expectInvalidRequest(
    t,
    authenticateClient(
      { authorization: basic(client.client_id, secret!), body: { client_id: other.client.client_id } },
      clients,
    ),
    /does not match the Authorization header/,
  );
});

t.test('repeated or non-string parameters are invalid_request naming the parameter', async (t) => {
  const { clients } = await service();
  const { client, secret } = await clients.admin.create(
    machineClient({ token_endpoint_auth_method: 'client_secret_post' }),
  );
  await expectInvalidRequest(
    t,
    authenticateClient(
      { authorization: undefined, body: { client_id: [client.client_id, client.client_id], client_secret: secret } },
      clients,
    ),
    /parameter client_id is repeated/,
  );
  await expectInvalidRequest(
    t,
    authenticateClient(
      { authorization: undefined, body: { client_id: client.client_id, client_secret: [secret, secret] } },
      clients,
    ),
    /parameter client_secret is repeated/,
  );
  await expectInvalidRequest(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: 42, client_secret: secret } }, clients),
    /client_id must be a string/,
  );
  await expectInvalidRequest(
    t,
    authenticateClient({ authorization: undefined, body: { client_secret: secret } }, clients),
    /client_secret was sent without client_id/,
  );
});

t.test('no client authentication at all is invalid_client', async (t) => {
  const { clients } = await service();
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: {} }, clients),
    false,
    /client authentication is required/,
  );
  // RFC 6749 §3.1: an empty parameter counts as omitted.
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: '' } }, clients),
    false,
    /required/,
  );
});

t.test('Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1)', async (t) => {
  const { db, clients } = await service();
  const id = `odd id:${unique()}+plus%percent`;
  const { client } = await clients.admin.create(machineClient(), { clientId: id });
  const secret = 'sëcret:with+plus%25 and space/=&';
  await rotateClientSecret(db, client.client_id, hashSecret(secret));
  clients.registry.invalidate(client.client_id);

  t.equal(formEncode(id).includes(':'), false, 'the colon in the id is percent-encoded on the wire');
  const result = await authenticateClient({ authorization: basic(id, secret), body: {} }, clients);
  t.equal(result.client.client_id, id, "':' '+' '%' and ' ' in the id survive");
  // Without the encoding, '+' would decode to a space and '%pe' is not an escape.
  const raw = `Basic ${Buffer.from(`${id}:${secret}`, 'utf8').toString('base64')}`;
  await expectInvalidClient(t, authenticateClient({ authorization: raw, body: {} }, clients), true);
  // A space encoded as %20 rather than '+' decodes the same.
  const pct = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`, 'utf8').toString('base64')}`;
  t.equal((await authenticateClient({ authorization: pct, body: {} }, clients)).client.client_id, id);
  t.ok(await findClientById(db, id));
});

t.test('authentication of a cached client runs no query, and last use is recorded afterwards', async (t) => {
  const { db, clients, selects } = await service();
  const { client, secret } = await clients.admin.create(machineClient());
  const auth = () => authenticateClient({ authorization: basic(client.client_id, secret!), body: {} }, clients);
  await auth();
  const before = selects();
  for (let i = 0; i < 10; i++) await auth();
  t.equal(selects(), before, 'ten authentications, no SELECT');
  await clients.usage.drain();
  t.ok((await findClientById(db, client.client_id))?.last_used_at instanceof Date);
});

t.test('a rotated secret replaces the old one at once on this process', async (t) => {
  const { clients } = await service();
  const { client, secret: old } = await clients.admin.create(machineClient());
  await authenticateClient({ authorization: basic(client.client_id, old!), body: {} }, clients);
  const { secret } = await clients.admin.rotateSecret(client.client_id);
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: basic(client.client_id, old!), body: {} }, clients),
    true,
  );
  t.ok(await authenticateClient({ authorization: basic(client.client_id, secret), body: {} }, clients));
});

t.test('a client_id URL never makes authentication fetch a metadata document or store a client', async (t) => {
  const { db } = await migratedDatabase();
  const fetched: string[] = [];
  const clients = createClients(db, clientConfig({ CIMD_ENABLED: 'true' }), {
    fetchDocument: async (url) => {
      fetched.push(url.href);
      throw new Error('no fetch expected');
    },
  });
  const clientId = `https://attacker.example/${unique()}.json`;
  await expectInvalidClient(
    t,
    authenticateClient({ authorization: undefined, body: { client_id: clientId } }, clients),
    false,
  );
  await expectInvalidClient(t, authenticateClient({ authorization: basic(clientId, 'x'), body: {} }, clients), true);
  t.same(fetched, []);
  t.equal(await findClientById(db, clientId), undefined);
});
