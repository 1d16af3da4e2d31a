import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Clock } from '../../lib/clock.js';
import { SessionService } from '../../services/sessions/session-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Gatehouse browser sessions (who is signed in, from the host's answer). */
    sessions: SessionService;
  }
}

export interface SessionsPluginOptions {
  /** The time sessions go by (BuildOptions.clock). */
  clock: Clock;
}

/** Decorates `app.sessions`. */
export default fp<SessionsPluginOptions>(
  async function sessions(app: FastifyInstance, { clock }) {
    app.decorate('sessions', new SessionService(app.database.db, app.config, clock));
  },
  { name: 'sessions', dependencies: ['database'] },
);
