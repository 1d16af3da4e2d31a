import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import { KeyStore } from '../../services/signing-keys/key-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The signing keys: `current()` signs, `jwks()` publishes. */
    keys: KeyStore;
  }
}

/**
 * Opens the key store on the app's database, adds a `signing_keys` readiness check, and stops the
 * store's refresh on close. A database that is not ready yet only delays readiness; a bad key file or
 * KEY_ENCRYPTION_SECRET stops startup.
 */
export default fp(
  async function keys(app: FastifyInstance) {
    const { config } = app;
    const store = await KeyStore.open(app.database, config, app.log, {
      retryUntilLoaded: true,
      now: app.clock,
      audit: app.audit,
    });
    app.decorate('keys', store);
    app.readinessChecks.push(['signing_keys', async () => store.readiness()]);
    if (app.metrics) {
      const clock = app.clock;
      // Alert when it exceeds KEY_ROTATION_INTERVAL_SECONDS by much: automatic rotation is not happening.
      new Gauge({
        name: 'gatehouse_signing_key_age_seconds',
        help: 'Seconds since the signing key in use started signing (absent for SIGNING_KEY_FILES).',
        registers: [app.metrics],
        collect() {
          const since = store.activeSince();
          this.reset();
          if (since) this.set((clock().getTime() - since.getTime()) / 1000);
        },
      });
    }
    app.addHook('onClose', async () => store.close());
  },
  { name: 'keys', dependencies: ['database', 'audit'] },
);
