import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { loadHostKeys } from '../../handshake/host-keys.js';
import { LogoutDeliveries } from '../../services/logout/deliveries.js';
import { HostSignOutService } from '../../services/sessions/host-sign-out.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The back-channel logout outbox: `kick()` after ending sessions delivers at once; a timer polls too. */
    logoutDeliveries: LogoutDeliveries & { kick(): void; idle(): Promise<void> };
    /** The host app's signed sign-out message (POST /host/sign-out). */
    hostSignOut: HostSignOutService;
  }
}

/**
 * Decorates `app.hostSignOut` (the host's sign-out message ends sessions) and `app.logoutDeliveries`, which
 * delivers queued back-channel logout tokens: every BACKCHANNEL_LOGOUT_POLL_MS (other replicas, the CLI
 * and retries queue them too) and at once when this process ended a session (`kick()`). One round at a
 * time per process; a failed round is logged and the next one tries again. Closing the app stops the
 * timer and waits for a round in progress, so the pool is not closed under it.
 */
export default fp(
  async function logout(app: FastifyInstance) {
    const deliveries = new LogoutDeliveries({
      db: app.database.db,
      config: app.config,
      clients: app.clients,
      signer: () => app.keys.current(),
      clock: app.clock,
      log: app.log,
    });
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let again = false;
    let closed = false;

    const round = (): Promise<void> => {
      if (running) {
        // A kick during a round: run once more after it, so nothing queued meanwhile waits for the timer.
        again = true;
        return running;
      }
      running = deliveries
        .deliverDue()
        .then(() => undefined)
        .catch((err: unknown) => app.log.error({ err }, 'back-channel logout round failed'))
        .finally(() => {
          running = undefined;
          if (again && !closed) {
            again = false;
            void round();
          }
        });
      return running;
    };
    const schedule = (): void => {
      if (closed) return;
      timer = setTimeout(() => {
        void round().finally(schedule);
      }, app.config.logout.pollInterval);
      timer.unref();
    };

    app.decorate(
      'logoutDeliveries',
      Object.assign(deliveries, {
        kick: (): void => {
          if (!closed) void round();
        },
        idle: async (): Promise<void> => {
          while (running) await running;
        },
      }),
    );
    app.decorate(
      'hostSignOut',
      new HostSignOutService({
        db: app.database.db,
        hostKeys: await loadHostKeys(app.config),
        config: app.config,
        clock: app.clock,
      }),
    );
    app.addHook('onReady', async () => schedule());
    app.addHook('preClose', async () => {
      closed = true;
      clearTimeout(timer);
      await running;
    });
  },
  { name: 'logout-deliveries', dependencies: ['database', 'clients', 'keys'] },
);
