import type { Config } from '../config/index.js';
import { type DatabaseHandle, openDatabase, waitForDatabase } from '../db/connect.js';

/**
 * Opens the database for one CLI command: the embedded one is locked to this process (refused while
 * `gatehouse serve` or another command has it open), and Postgres is tried once at once, so an
 * unreachable server is reported by host, port and database naming DATABASE_URL, not as a bare
 * `connect ECONNREFUSED`. The CLI does not wait: a person is reading.
 */
export async function openForCommand(config: Pick<Config, 'database'>, command: string): Promise<DatabaseHandle> {
  const handle = await openDatabase(config, { owner: `gatehouse ${command}` });
  try {
    await waitForDatabase(handle, { waitMs: 0 });
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}
