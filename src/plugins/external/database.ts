import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type DatabaseHandle, openDatabase, waitForDatabase } from '../../db/connect.js';
import { migrateUp } from '../../db/migrate.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: DatabaseHandle;
  }
}

export interface DatabasePluginOptions {
  /** An already open database (tests); the plugin then leaves closing it to the caller. */
  database?: DatabaseHandle;
}

/** Opens the database (Postgres or PGlite), applies migrations when AUTO_MIGRATE is on, and closes it with the app. */
export default fp<DatabasePluginOptions>(
  async function database(app: FastifyInstance, { database }) {
    const { config } = app;
    // A line before each slow step, so a first start is never silent (issue 13).
    if (!database)
      app.log.info(
        config.database.url
          ? 'connecting to Postgres (DATABASE_URL)'
          : `opening the embedded PGlite database in ${config.database.dataDir} (a few seconds; longer the first time)`,
      );
    const handle = database ?? (await openDatabase(config));
    app.decorate('database', handle);
    // A Postgres that is still starting (or restarting) when this process starts: retry with backoff for
    // DATABASE_STARTUP_WAIT_SECONDS, one line per attempt, rather than exit at the first refused connection.
    if (!database) {
      const waitMs = config.database.startupWaitSeconds * 1000;
      try {
        await waitForDatabase(handle, {
          waitMs,
          onRetry: ({ attempt, retryInMs, reason }) =>
            app.log.warn(
              { database: handle.location, attempt, retryInMs },
              `Postgres at ${handle.location} (DATABASE_URL) is not reachable yet (${reason}); attempt ${attempt + 1} in ${retryInMs} ms, giving up ${config.database.startupWaitSeconds} s after the first`,
            ),
        });
      } catch (err) {
        await handle.close();
        throw err;
      }
      app.addHook('onClose', async () => handle.close());
    }
    app.log.info(
      { database: handle.kind, location: handle.location },
      handle.kind === 'pglite' ? 'using the embedded PGlite database' : 'using Postgres',
    );
    if (config.database.autoMigrate) {
      app.log.debug('applying pending migrations (AUTO_MIGRATE)');
      const applied = await migrateUp(handle.migrationRoot ?? handle.root, config.database.schema);
      if (applied.length > 0) app.log.info({ migrations: applied }, 'applied migrations');
    }
  },
  { name: 'database' },
);
