import t from 'tap';
import { KeysUsageError, keysCommand } from '../../src/cli/keys.js';
import type { KeyInfo } from '../../src/services/signing-keys/key-store.js';
import { testConfig } from '../helper.js';
import { emptyKeyTable, silent } from './fixtures/keys.js';

t.test('keys list, rotate and retire, as text and as JSON', async (t) => {
  const handle = await emptyKeyTable();
  const config = testConfig({ SIGNING_ALG: 'EdDSA' });
  const ctx = { config, handle, logger: silent };

  const listed = (await keysCommand(['list'], { ...ctx, json: true })) as KeyInfo[];
  t.equal(listed.length, 1, 'the first key is generated like at first start');
  t.match(listed[0], { alg: 'EdDSA', state: 'active', source: 'database', published: true });
  t.notOk('private_key_enc' in listed[0]! || 'privateJwk' in listed[0]!, 'no private part is listed');
  // One JSON style in the CLI: snake_case, as in clients --json and the admin API.
  t.same(Object.keys(listed[0]!), [
    'kid',
    'alg',
    'state',
    'source',
    'published',
    'created_at',
    'activate_at',
    'activated_at',
    'retired_at',
    'expires_at',
  ]);
  const first = listed[0]!.kid;
  t.equal(
    await keysCommand([], { ...ctx, json: false }),
    await keysCommand(['list'], { ...ctx, json: false }),
    'list is the default',
  );
  t.match(
    await keysCommand(['list'], { ...ctx, json: false }),
    new RegExp(`^${first}  EdDSA  active \\s+database  signing since \\d{4}-`),
  );

  const rotated = (await keysCommand(['rotate'], { ...ctx, json: false })) as string;
  const match = /^added (\S+) \(EdDSA\): published in the JWKS now, signs from (\S+)$/.exec(rotated);
  t.ok(match, rotated);
  const next = match![1]!;
  t.equal(Date.parse(match![2]!) - Date.now() > 3_500_000, true, 'signs after the default one-hour rotation delay');
  const text = (await keysCommand(['list'], { ...ctx, json: false })) as string;
  t.match(text, new RegExp(`^${next}  EdDSA  next\\s+database  signs from `, 'm'));

  // A kid is a thumbprint in base64url and starts with "-" one time in 64: it is still a kid, not an option.
  const dashed = `-${'A'.repeat(42)}`;
  await t.rejects(keysCommand(['retire', dashed, '--immediately'], { ...ctx, json: false }), {
    name: 'KeyOperationError',
    message: `no signing key with kid ${dashed}`,
  });

  // A healthy active key is never replaced by one verifiers have not had time to fetch: it retires when the next key takes over.
  await t.rejects(keysCommand(['retire', first], { ...ctx, json: false }), {
    name: 'KeyOperationError',
    message: new RegExp(`^${first} is the active key; it retires by itself when ${next} signs from`),
  });

  const pulled = (await keysCommand(['retire', first, '--immediately'], { ...ctx, json: true })) as {
    retired: KeyInfo;
    signing: KeyInfo;
  };
  t.match(pulled, {
    retired: { kid: first, state: 'retired', published: false },
    signing: { kid: next, state: 'active' },
  });
  t.match(
    await keysCommand(['retire', next, '--immediately'], { ...ctx, json: false }),
    new RegExp(`^retired ${next}; it has left the JWKS\\n\\S+ \\(EdDSA\\) signs now$`),
  );

  const after = (await keysCommand(['list'], { ...ctx, json: true })) as KeyInfo[];
  t.equal(after.filter((k) => k.state === 'active').length, 1, 'always exactly one active key');
  t.equal(after.filter((k) => k.published).length, 1, 'the two retired-immediately keys are unpublished');
});

t.test('keys refuses malformed commands and unknown keys', async (t) => {
  const handle = await emptyKeyTable();
  const ctx = { config: testConfig(), handle, json: false, logger: silent };
  await t.rejects(keysCommand(['frobnicate'], ctx), new KeysUsageError('unknown keys action: frobnicate'));
  await t.rejects(keysCommand(['retire'], ctx), new KeysUsageError('keys retire needs the kid of the key to retire'));
  await t.rejects(keysCommand(['list', 'extra'], ctx), new KeysUsageError('unexpected argument: extra'));
  await t.rejects(
    keysCommand(['rotate', '--immediately'], ctx),
    new KeysUsageError('--immediately only applies to keys retire'),
  );
  await t.rejects(keysCommand(['retire', 'nope'], ctx), {
    name: 'KeyOperationError',
    message: 'no signing key with kid nope',
  });
  t.equal(
    (await handle.db.selectFrom('signing_keys').select('kid').execute()).length,
    1,
    'only the first key was made',
  );
});
