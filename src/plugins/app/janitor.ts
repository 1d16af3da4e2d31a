import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { SweepStopped, sweepOnce, sweepOptions } from '../../services/janitor.js';

/**
 * Sweeps expired rows every JANITOR_INTERVAL_SECONDS (0: never). The first sweep waits one interval plus
 * up to a tenth of it at random, so replicas started together do not all reach for the lock at once;
 * the lock (see sweepOnce) makes sure only one of them sweeps, paced to JANITOR_DUTY_PERCENT of its time
 * (services/janitor.ts). A failed sweep is logged and retried at the next interval; it never affects
 * requests. Closing the app stops the timer, stops a sweep in progress after its current statement, and
 * waits for that, so the pool is not closed under it.
 */
export default fp(
  async function janitor(app: FastifyInstance) {
    const { config } = app;
    const intervalMs = config.janitor.interval * 1000;
    if (intervalMs === 0) return;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let closed = false;
    // A paced sweep of a large backlog can take minutes: closing stops it between two statements.
    const stop = new AbortController();

    const sweep = async (): Promise<void> => {
      const started = performance.now();
      try {
        const result = await sweepOnce(
          app.database,
          config.database.schema,
          sweepOptions(config, { clock: app.clock, signal: stop.signal }),
        );
        if (result === null) app.log.debug('janitor: another replica holds the lock; skipped');
        // Field names the log redaction leaves alone (it hides anything named like a token or authorization).
        else
          app.log.info(
            {
              deleted: {
                requests: result.authorization_requests,
                codes: result.authorization_codes,
                refresh: result.refresh_tokens,
                sessions: result.sessions,
                revocations: result.grant_revocations,
                dpopProofs: result.dpop_proofs,
                pushed: result.pushed_authorization_requests,
                jtis: result.client_assertion_jtis,
                audit: result.audit_events,
              },
              ms: Math.round(performance.now() - started),
            },
            'janitor swept expired rows',
          );
      } catch (err) {
        if (err instanceof SweepStopped) app.log.info('janitor: sweep stopped for shutdown; the next start goes on');
        else app.log.error({ err }, 'janitor sweep failed');
      }
    };
    const schedule = (delayMs: number): void => {
      if (closed) return;
      timer = setTimeout(() => {
        running = sweep().finally(() => {
          running = undefined;
          schedule(intervalMs);
        });
      }, delayMs);
      timer.unref();
    };

    app.addHook('onReady', async () => schedule(intervalMs + Math.floor(Math.random() * intervalMs * 0.1)));
    app.addHook('preClose', async () => {
      closed = true;
      clearTimeout(timer);
      stop.abort();
      await running;
    });
  },
  { name: 'janitor', dependencies: ['database'] },
);
