import { createHash } from 'node:crypto';
import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type pg from 'pg';

/**
 * Hot statements, compiled once and prepared by Postgres once per connection (DESIGN.md: "hot queries
 * are prepared"). Building and compiling a Kysely query (with the schema prefix) costs more CPU than
 * Postgres takes to run these statements, and an unnamed statement is parsed and planned again every
 * time. A precompiled query is built once per database handle with a marker in place of each parameter;
 * each call then only fills in the parameter list. On Postgres its SQL text is sent as a named prepared
 * statement (see `preparingPool`); PGlite simply runs it.
 *
 * Parameters must all come from the `params` object (a constant would be baked into the first call) and
 * every parameter must be a value: the markers are strings, so a builder must not inspect or spread them.
 * Statements name their result columns instead of `returning *`, so a migration that adds a column does
 * not invalidate the prepared plans of replicas still running ("cached plan must not change result type").
 */

const MARKER = '\u0000gatehouse-param:';

/** SQL text of each prepared statement to its statement name. */
const statementNames = new Map<string, string>();

/** The statement name for a precompiled SQL text, if it is one. */
export function preparedName(sqlText: string): string | undefined {
  return statementNames.get(sqlText);
}

export type PrecompiledQuery<P, R> = (db: Kysely<any>, params: P) => Promise<R[]>;

/** Compiles `build` once per database handle; each call runs it with these parameter values. */
export function precompiled<P extends Record<string, unknown>, R>(build: (db: Kysely<any>, params: P) => Compilable<R>): PrecompiledQuery<P, R> {
  const cache = new WeakMap<object, { compiled: CompiledQuery<R>; slots: Array<keyof P & string> }>();
  return async (db, values) => {
    let entry = cache.get(db);
    if (!entry) {
      const markers = new Proxy({} as P, { get: (_target, name) => `${MARKER}${String(name)}` });
      const compiled = build(db, markers).compile();
      const slots = compiled.parameters.map((value) => {
        if (typeof value !== 'string' || !value.startsWith(MARKER)) throw new Error(`precompiled query has a constant parameter: ${String(value)}`);
        return value.slice(MARKER.length) as keyof P & string;
      });
      statementNames.set(compiled.sql, `gatehouse_${createHash('sha256').update(compiled.sql).digest('hex').slice(0, 24)}`);
      entry = { compiled, slots };
      cache.set(db, entry);
    }
    const parameters = entry.slots.map((slot) => values[slot]);
    const result = await db.executeQuery<R>({ ...entry.compiled, parameters });
    return result.rows;
  };
}

/**
 * Makes a pg pool send precompiled statements as named prepared statements: pg prepares a name once per
 * connection and then only binds and executes. Every other query goes through unchanged.
 */
export function preparingPool(pool: pg.Pool): pg.Pool {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (text: unknown, values?: unknown, callback?: unknown) => {
      const name = typeof text === 'string' ? statementNames.get(text) : undefined;
      if (name === undefined) return callback === undefined ? query(text, values) : query(text, values, callback);
      return query({ name, text, values }, callback);
    };
  });
  return pool;
}
