import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { SessionService } from '../../services/session-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Gatehouse browser sessions (who is signed in, from the host's answer). */
    sessions: SessionService;
  }
}

export interface SessionsPluginOptions {
  config: Readonly<Config>;
}

/** Decorates `app.sessions`. */
export default fp<SessionsPluginOptions>(
  async function sessions(app: FastifyInstance, { config }) {
    app.decorate('sessions', new SessionService(app.database.db, config));
  },
  { name: 'sessions', dependencies: ['database'] },
);
