import { type AliasedRawBuilder, sql } from 'kysely';
import type { Db } from './database.js';

/**
 * Concurrent calls of one hot statement sharing a round trip. Under load most of a token request's cost
 * in the process and in Postgres is the round trip itself (the write, waking the backend, parsing the
 * bind), not the few index probes the statement makes, so the calls queued during one turn of the event
 * loop go to Postgres as one statement whose input is a JSON array of the items (bench/README.md measures
 * what this buys). Each item keeps exactly the conditions it has alone: the batch statement evaluates them
 * per row, and answers each item by itself.
 *
 * - A lone item runs the single statement, so a quiet server does exactly what it did before batching.
 * - Items with the same key (the same row: one token presented twice) never share a statement: the later
 *   one goes in the next batch, which Postgres serialises behind the first on the row lock, exactly as two
 *   concurrent single statements would be.
 * - When the batch statement fails for a reason that belongs to the statement and rolled it back (a
 *   deadlock or serialisation failure between two batches, bad data in one item, a constraint), each item
 *   runs alone, so one item's failure is its own. A database that is unreachable fails every item with its
 *   own error, as the single statements would have failed.
 * - Inside a transaction there is no batching (the transaction is one request's own).
 */
export interface BatchOptions<I, R> {
  /** The statement's name in the counts (`batchCounts`) and metrics. */
  name: string;
  /** At most this many items go in one statement. */
  max: number;
  /**
   * Which row a writing item addresses: items with the same key never share a statement, and a batch goes
   * in key order. None for reads: identical lookups may share a statement (each gets the same answer),
   * where deferring them would run them one per turn.
   */
  key?: (item: I) => string;
  /** The statement for one item: a lone item, an item inside a transaction, and the fallback. */
  one: (db: Db, item: I) => Promise<R | undefined>;
  /** The statement for several items: the answer for each, in the items' order (undefined: none). */
  many: (db: Db, items: readonly I[]) => Promise<ReadonlyArray<R | undefined>>;
}

/** How a batched statement has run in this process since it started. */
export interface BatchCounts {
  /** Batch statements run (a lone item's single statement is not one). */
  statements: number;
  /** Items those statements carried. */
  items: number;
  /** Items run alone after their batch statement failed (`runsAloneAfter`). */
  fallbacks: number;
}

const counts = new Map<string, BatchCounts>();

/** The counts of every batched statement, by name (the metrics read them). */
export function batchCounts(): ReadonlyMap<string, Readonly<BatchCounts>> {
  return counts;
}

interface Pending<I, R> {
  item: I;
  resolve: (value: R | undefined) => void;
  reject: (err: unknown) => void;
}

/**
 * SQLSTATEs after which a batch's items are run one by one: class 22 (data exception) and 23 (integrity
 * constraint violation), 40001 serialization_failure, 40P01 deadlock_detected (two batches locking the
 * same rows in another order) and 55P03 lock_not_available (a lock_timeout on one row). Each means the
 * statement was rolled back whole, so nothing of it is stored, and the failure may be one item's. Not
 * 40003 statement_completion_unknown (the batch may have committed), and not 57014 (statement_timeout):
 * under an overloaded database that would turn one slow statement into 64.
 */
const RUN_ALONE = /^(22[0-9A-Z]{3}|23[0-9A-Z]{3}|40001|40P01|55P03)$/;

/** Whether a failed batch's items should each run alone (the failure may be one item's). */
export function runsAloneAfter(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RUN_ALONE.test(code);
}
/** A function that runs `options.one` for each call, batching the calls made during one turn of the event loop. */
export function batched<I, R>(options: BatchOptions<I, R>): (db: Db, item: I) => Promise<R | undefined> {
  const { name, max, key, one, many } = options;
  const count: BatchCounts = { statements: 0, items: 0, fallbacks: 0 };
  counts.set(name, count);
  const queues = new WeakMap<Db, Array<Pending<I, R>>>();

  /** `fn` called now, its synchronous throw turned into a rejection (a throwing executor rejects). */
  const attempt = <T>(fn: () => Promise<T>): Promise<T> => new Promise<T>((resolve) => resolve(fn()));

  const alone = (db: Db, pending: Pending<I, R>) =>
    attempt(() => one(db, pending.item)).then(pending.resolve, pending.reject);

  const run = (db: Db, batch: Array<Pending<I, R>>) => {
    if (batch.length === 1) return void alone(db, batch[0]!);
    count.statements += 1;
    count.items += batch.length;
    attempt(() =>
      many(
        db,
        batch.map((pending) => pending.item),
      ),
    ).then(
      (answers) => {
        if (answers.length !== batch.length) {
          const err = new Error(`batched ${name}: ${answers.length} answers for ${batch.length} items`);
          for (const pending of batch) pending.reject(err);
        } else batch.forEach((pending, i) => pending.resolve(answers[i]));
      },
      (err: unknown) => {
        if (runsAloneAfter(err)) {
          count.fallbacks += batch.length;
          for (const pending of batch) void alone(db, pending);
        } else for (const pending of batch) pending.reject(err);
      },
    );
  };

  const flush = (db: Db) => {
    const queue = queues.get(db) ?? [];
    const batch: Array<Pending<I, R> & { key: string }> = [];
    const later: Array<Pending<I, R>> = [];
    const keys = new Set<string>();
    try {
      for (const pending of queue) {
        // Without a key (reads), every call is its own row; with one, a repeated key waits for a later batch.
        const k = key ? key(pending.item) : '';
        if (batch.length < max && !(key && keys.has(k))) {
          keys.add(k);
          batch.push({ ...pending, key: k });
        } else later.push(pending);
      }
    } catch (err) {
      queues.delete(db);
      for (const pending of queue) pending.reject(err);
      return;
    }
    if (later.length > 0) {
      queues.set(db, later);
      setImmediate(flush, db);
    } else queues.delete(db);
    // In key order: two batches that hold the same rows then tend to lock them in the same order.
    run(db, key ? batch.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) : batch);
  };

  return (db, item) => {
    if (db.isTransaction) return one(db, item);
    return new Promise((resolve, reject) => {
      let queue = queues.get(db);
      if (!queue) {
        queue = [];
        queues.set(db, queue);
        setImmediate(flush, db);
      }
      queue.push({ item, resolve, reject });
    });
  };
}

/**
 * A batch statement's input: its one JSON array parameter read as rows named `input_row`, with the given
 * column definitions (`"ord int, token_hash text, …"`; each name is a JSON key of the items). Read as
 * `json`, not `jsonb`: the text is parsed once either way, and `json` skips building the binary form that
 * is read once and dropped (a third of the input's cost here: 5 µs a row of 11 columns instead of 7.5).
 * Both read duplicate keys (last wins), nested arrays and nulls alike.
 */
export function batchInput<Row>(items: unknown, columns: string): AliasedRawBuilder<Row, 'input_row'> {
  return sql<Row>`json_to_recordset(${items}::json)`.as<'input_row'>(sql.raw(`input_row(${columns})`));
}
