import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ClientAuthThrottle } from '../../services/clients/auth-throttle.js';
import { ClientAssertions } from '../../services/clients/client-assertions.js';
import { applyClientsFile } from '../../services/clients/clients-file.js';
import { clientAuthThrottleObserver } from './metrics.js';
import {
  type ClientAdmin,
  ClientRegistration,
  type ClientRegistry,
  type ClientUsage,
  createClients,
} from '../../services/clients/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The client registry (read path): cached clients for the token endpoint, /authorize and the pages. */
    clients: ClientRegistry;
    /** Admin writes (create, update, rotate, disable, delete); every change drops the registry's copy. */
    clientAdmin: ClientAdmin;
    /** Usage recording: a client's last_used_at, written in the background. */
    clientUsage: ClientUsage;
    /** RFC 7591 / 7592 dynamic registration and its management. */
    clientRegistration: ClientRegistration;
    /** Brute-force protection for client authentication at /token, /introspect and /revoke (CLIENT_AUTH_*). */
    clientAuthThrottle: ClientAuthThrottle;
    /** private_key_jwt client assertions: keys (jwks, jwks_uri) and replay, for every endpoint that authenticates clients. */
    clientAssertions: ClientAssertions;
  }
}

/** Decorates the client units and applies CLIENTS_FILE at start; a bad file stops the start. */
export default fp(
  async function clients(app: FastifyInstance) {
    const { config } = app;
    if (config.clients.file) await applyClientsFile(app.database.db, config, app.log, app.audit);
    const { registry, admin, usage } = createClients(app.database.db, config, {
      log: app.log,
      now: () => app.clock().getTime(),
      audit: app.audit,
    });
    app.decorate('clients', registry);
    app.decorate('clientAdmin', admin);
    app.decorate('clientUsage', usage);
    app.decorate('clientRegistration', new ClientRegistration(admin, config));
    app.decorate(
      'clientAuthThrottle',
      new ClientAuthThrottle(config.clientAuthThrottle, app.clock, clientAuthThrottleObserver(app.metrics)),
    );
    app.decorate('clientAssertions', new ClientAssertions(app.database.db, config, app.clock));
    // Background last_used_at writes finish before the database plugin closes the pool.
    app.addHook('preClose', async () => usage.drain());
  },
  { name: 'clients', dependencies: ['database', 'audit'] },
);
