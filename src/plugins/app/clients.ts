import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { applyClientsFile } from '../../clients/clients-file.js';
import { ClientService } from '../../services/client-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Clients, cached for the token endpoint; every change goes through here. */
    clients: ClientService;
  }
}

/** Decorates `app.clients` and applies CLIENTS_FILE at start; a bad file stops the start. */
export default fp(
  async function clients(app: FastifyInstance) {
    const { config } = app;
    if (config.clients.file) await applyClientsFile(app.database.db, config, app.log);
    const service = new ClientService(app.database.db, config, { log: app.log });
    app.decorate('clients', service);
    // Background last_used_at writes finish before the database plugin closes the pool.
    app.addHook('preClose', async () => service.drain());
  },
  { name: 'clients', dependencies: ['database'] },
);
