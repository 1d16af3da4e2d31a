import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type DatabaseHandle, openDatabase } from '../../db/connect.js';
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
    const handle = database ?? (await openDatabase(config));
    app.decorate('database', handle);
    if (!database) app.addHook('onClose', async () => handle.close());
    app.log.info(
      { database: handle.kind, location: handle.location },
      handle.kind === 'pglite' ? 'using the embedded PGlite database' : 'using Postgres',
    );
    if (config.database.autoMigrate) {
      const applied = await migrateUp(handle.migrationRoot ?? handle.root, config.database.schema);
      if (applied.length > 0) app.log.info({ migrations: applied }, 'applied migrations');
    }
  },
  { name: 'database' },
);
