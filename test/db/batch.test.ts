import t from 'tap';
import { batched } from '../../src/db/batch.js';
import { testDatabase } from '../helper.js';

// The batcher's own contract, with plain functions in place of statements (the real statements are
// tested in rotation-batch.test.ts and redemption-batch.test.ts).

interface Calls {
  one: string[];
  many: string[][];
}

function recorder(overrides: { many?: (items: readonly string[]) => Promise<Array<string | undefined>> } = {}) {
  const calls: Calls = { one: [], many: [] };
  const run = batched<string, string>({
    name: `test-${Math.random()}`,
    max: 3,
    key: (item) => item.split('#')[0]!,
    one: async (_db, item) => {
      calls.one.push(item);
      return `one:${item}`;
    },
    many: async (_db, items) => {
      calls.many.push([...items]);
      return overrides.many ? overrides.many(items) : items.map((item) => `many:${item}`);
    },
  });
  return { calls, run };
}

t.test('a lone call runs the single statement; calls in one turn share one, in key order, at most `max`', async (t) => {
  const { db } = await testDatabase();
  const { calls, run } = recorder();
  t.equal(await run(db, 'a'), 'one:a');
  t.same(calls, { one: ['a'], many: [] });
  const answers = await Promise.all(['e', 'c', 'd', 'b', 'a'].map((item) => run(db, item)));
  t.same(answers, ['many:e', 'many:c', 'many:d', 'many:b', 'many:a'], 'each its own answer');
  t.same(
    calls.many,
    [
      ['c', 'd', 'e'],
      ['a', 'b'],
    ],
    'three, then the rest in the next turn; each sorted by key',
  );
});

t.test('two calls for the same key never share a statement', async (t) => {
  const { db } = await testDatabase();
  const { calls, run } = recorder();
  const answers = await Promise.all(['x#1', 'y', 'x#2', 'x#3'].map((item) => run(db, item)));
  t.same(answers, ['many:x#1', 'many:y', 'one:x#2', 'one:x#3']);
  t.same(calls.many, [['x#1', 'y']], 'x#1 with y first');
  t.same(calls.one, ['x#2', 'x#3'], 'then x#2 and x#3 in later statements, one each, in order');
});

t.test('inside a transaction there is no batching', async (t) => {
  const { db } = await testDatabase();
  const { calls, run } = recorder();
  await db.transaction().execute(async (trx) => {
    t.same(await Promise.all([run(trx, 'a'), run(trx, 'b')]), ['one:a', 'one:b']);
  });
  t.same(calls.many, []);
});

t.test('a failure every item shares rejects them all; a wrong number of answers too', async (t) => {
  const { db } = await testDatabase();
  const down = recorder({ many: () => Promise.reject(Object.assign(new Error('gone'), { code: '57P01' })) });
  const outcomes = await Promise.allSettled(['a', 'b'].map((item) => down.run(db, item)));
  t.same(
    outcomes.map((o) => o.status),
    ['rejected', 'rejected'],
  );
  t.same(down.calls.one, [], 'not run again one by one');
  const short = recorder({ many: async () => ['only one'] });
  const answers = await Promise.allSettled(['a', 'b'].map((item) => short.run(db, item)));
  t.match(answers, [{ status: 'rejected', reason: /2 items/ }, { status: 'rejected' }], 'no item gets a wrong answer');
});

t.test("a synchronous throw becomes each call's rejection, and the queue goes on", async (t) => {
  const { db } = await testDatabase();
  const run = batched<string, string>({
    name: 'test-throwing',
    max: 8,
    key: (item) => {
      if (item === 'bad-key') throw new Error('no key');
      return item;
    },
    one: (_db, item) => {
      if (item === 'bad-one') throw new Error('thrown');
      return Promise.resolve(item);
    },
    many: () => {
      throw Object.assign(new Error('thrown'), { code: '22P05' });
    },
  });
  await t.rejects(run(db, 'bad-one'), /thrown/);
  const outcomes = await Promise.allSettled(['a', 'bad-one'].map((item) => run(db, item)));
  t.same(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected'],
    'run alone after the batch threw',
  );
  const keyless = await Promise.allSettled(['a', 'bad-key'].map((item) => run(db, item)));
  t.same(
    keyless.map((o) => o.status),
    ['rejected', 'rejected'],
    'a key that throws fails its turn',
  );
  t.equal(await run(db, 'later'), 'later', 'and the next call still runs');
});

t.test('without a key (reads), identical calls share a statement', async (t) => {
  const { db } = await testDatabase();
  const many: string[][] = [];
  const run = batched<string, string>({
    name: 'test-keyless',
    max: 8,
    one: async (_db, item) => `one:${item}`,
    many: async (_db, items) => {
      many.push([...items]);
      return items.map((item) => `many:${item}`);
    },
  });
  t.same(await Promise.all(['b', 'a', 'b'].map((item) => run(db, item))), ['many:b', 'many:a', 'many:b']);
  t.same(many, [['b', 'a', 'b']], 'one statement, in the order asked');
});
