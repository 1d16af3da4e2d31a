import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { buildAdminApp } from './admin-app.js';
import { type BuildOptions, buildApp } from './app.js';
import type { Config } from './config/index.js';

export interface StartOptions extends BuildOptions {
  /** Adds to the app before it listens (used by tests that need an extra route). */
  configure?: (app: FastifyInstance) => void | Promise<void>;
}

/** Builds the app, listens, and arranges a graceful shutdown on SIGTERM/SIGINT. */
export async function startServer(config: Readonly<Config>, options: StartOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp(config, options);
  await options.configure?.(app);
  // The admin listener (admin API, /metrics) when ADMIN_PORT is set: it closes first, with the app.
  const admin = config.admin.port === 0 ? null : await buildAdminApp(config, app);
  if (admin) app.addHook('preClose', async () => admin.close());

  // Stop accepting, let in-flight requests finish, close the pool; exit 1 if that overruns the timeout.
  const grace = closeWithGrace({ delay: config.server.shutdownTimeout * 1000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'fatal error, shutting down');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
    app.log.info('shut down cleanly');
  });

  // Both listeners or neither: a server without its admin listener (port taken) must not look healthy.
  try {
    await app.listen({ host: config.server.host, port: config.server.port });
    if (admin) {
      await admin.listen({ host: config.admin.host, port: config.admin.port });
      const address = admin.server.address();
      app.log.info(
        { admin: typeof address === 'object' && address ? `${address.address}:${address.port}` : address },
        'admin listener ready',
      );
    }
  } catch (err) {
    // Not through close-with-grace: it would end the process with exit code 0 once the loop drains.
    grace.uninstall();
    await app.close();
    throw err;
  }
  app.log.info(
    { issuer: config.issuer, startupMs: Math.round(performance.now()) },
    `Gatehouse ready at ${config.issuer}`,
  );
  return app;
}
