import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { SessionService } from '../../services/session-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Gatehouse browser sessions (who is signed in, from the host's answer). */
    sessions: SessionService;
  }
}

/** Decorates `app.sessions`. */
export default fp(
  async function sessions(app: FastifyInstance) {
    const { config } = app;
    app.decorate('sessions', new SessionService(app.database.db, config));
  },
  { name: 'sessions', dependencies: ['database'] },
);
