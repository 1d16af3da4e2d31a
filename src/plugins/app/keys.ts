import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
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
    const store = await KeyStore.open(app.database, config, app.log, { retryUntilLoaded: true, now: app.clock });
    app.decorate('keys', store);
    app.readinessChecks.push(['signing_keys', async () => store.readiness()]);
    app.addHook('onClose', async () => store.close());
  },
  { name: 'keys', dependencies: ['database'] },
);
