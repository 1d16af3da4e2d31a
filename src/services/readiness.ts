import { sql } from 'kysely';
import type { DatabaseHandle } from '../db/connect.js';
import { appliedMigrations, knownMigrations } from '../db/migrate.js';

/** One readiness check: resolves to null when fine, or a short reason when not. */
export type ReadinessCheck = () => Promise<string | null>;

function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Database reachable within the timeout. */
export function databaseCheck(database: DatabaseHandle, timeoutMs = 2000): ReadinessCheck {
  return async () => {
    try {
      await withTimeout(sql`select 1`.execute(database.root), timeoutMs, 'database');
      return null;
    } catch (err) {
      return `database unreachable: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
}

/** Every migration this build ships has been applied. */
export function migrationsCheck(database: DatabaseHandle, schema: string, timeoutMs = 2000): ReadinessCheck {
  const known = knownMigrations();
  return async () => {
    try {
      const applied = new Set(await withTimeout(appliedMigrations(database.root, schema), timeoutMs, 'migrations'));
      const pending = (await known).filter((name) => !applied.has(name));
      return pending.length === 0 ? null : `${pending.length} migration(s) pending: ${pending.join(', ')}`;
    } catch (err) {
      return `migrations unknown: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
}

/** Runs checks in order and reports the first failure. */
export async function checkReadiness(
  checks: ReadonlyArray<[string, ReadinessCheck]>,
): Promise<{ ready: boolean; checks: Record<string, string> }> {
  const out: Record<string, string> = {};
  let ready = true;
  for (const [name, check] of checks) {
    const problem = ready ? await check() : 'not checked';
    out[name] = problem ?? 'ok';
    if (problem) ready = false;
  }
  return { ready, checks: out };
}
