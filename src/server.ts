import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { buildAdminApp } from './admin-app.js';
import { type BuildOptions, buildApp } from './app.js';
import type { Config } from './config/index.js';
import { checkReadiness } from './services/readiness.js';
import { setupStatus, setupSummary } from './services/setup-report.js';

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
  await reportStart(app, config);
  return app;
}

/**
 * The start-up report (issue 13, a first run that guides): what a flow needs and what is missing, each
 * missing thing with the variable or command that fixes it; then "Gatehouse ready" only when /readyz would
 * say so, and otherwise what is wrong (an unmigrated database with AUTO_MIGRATE=false: what to run).
 */
async function reportStart(app: FastifyInstance, config: Readonly<Config>): Promise<void> {
  const readiness = await checkReadiness(app.readinessChecks);
  if (readiness.checks.migrations === 'ok') {
    try {
      const items = await setupStatus(app.database.db, config);
      app.log.info({ setup: Object.fromEntries(items.map((i) => [i.name, i.detail])) }, setupSummary(items));
      for (const item of items.filter((i) => !i.ok))
        app.log.warn({ setup: item.name, fix: item.fix }, `setup: ${item.name}: ${item.detail}; fix: ${item.fix}`);
    } catch (err) {
      app.log.warn({ err }, 'setup: could not read the clients table for the start-up summary');
    }
  }
  const startupMs = Math.round(performance.now());
  if (readiness.ready) {
    app.log.info({ issuer: config.issuer, startupMs }, `Gatehouse ready at ${config.issuer}`);
    return;
  }
  const problems = Object.entries(readiness.checks)
    .filter(([, v]) => v !== 'ok' && v !== 'not checked')
    .map(([k, v]) => `${k}: ${v}`);
  const migrate = readiness.checks.migrations !== 'ok' && !config.database.autoMigrate;
  app.log.warn(
    { issuer: config.issuer, startupMs, checks: readiness.checks },
    `Gatehouse is listening at ${config.issuer} but NOT READY (/readyz answers 503): ${problems.join('; ')}${
      migrate ? '. AUTO_MIGRATE=false: run `gatehouse migrate up` (or `npm run migrate`) against this database' : ''
    }`,
  );
}
