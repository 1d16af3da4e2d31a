import { randomUUID } from 'node:crypto';
import type { ServerOptions } from 'node:http';
import type { Writable } from 'node:stream';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Config } from './config/index.js';
import type { DatabaseHandle } from './db/connect.js';
import { type Clock, systemClock } from './lib/clock.js';
import { clientErrorHandler } from './http/client-errors.js';
import { createLogger, RequestLogController } from './logging.js';
import accountPlugin from './plugins/app/account.js';
import auditPlugin from './plugins/app/audit.js';
import authorizationPlugin from './plugins/app/authorization.js';
import clientsPlugin from './plugins/app/clients.js';
import errorHandler from './plugins/app/error-handler.js';
import inputGuard from './plugins/app/input-guard.js';
import janitorPlugin from './plugins/app/janitor.js';
import keysPlugin from './plugins/app/keys.js';
import logoutPlugin from './plugins/app/logout.js';
import metricsPlugin from './plugins/app/metrics.js';
import sessionsPlugin from './plugins/app/sessions.js';
import tokensPlugin from './plugins/app/tokens.js';
import corsPlugin from './plugins/external/cors.js';
import databasePlugin from './plugins/external/database.js';
import rateLimitPlugin from './plugins/external/rate-limit.js';
import viewPlugin, { pageSecurityHeaders } from './plugins/external/view.js';
import healthRoutes from './routes/health.js';
import hostSignOutRoute from './routes/host/sign-out.js';
import signInCompleteRoute from './routes/interaction/sign-in-complete.js';
import signOutRoute from './routes/interaction/sign-out.js';
import consentRoutes from './routes/interaction/consent.js';
import connectedAppsRoutes from './routes/account/connected-apps.js';
import authorizeRoute from './routes/oauth/authorize.js';
import introspectRoute from './routes/oauth/introspect.js';
import parRoute from './routes/oauth/par.js';
import revokeRoute from './routes/oauth/revoke.js';
import registerRoutes from './routes/oauth/register.js';
import tokenRoute from './routes/oauth/token.js';
import userinfoRoute from './routes/oauth/userinfo.js';
import jwksRoute from './routes/well-known/jwks.js';
import metadataRoutes from './routes/well-known/metadata.js';
import { databaseCheck, migrationsCheck } from './services/readiness.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated configuration: how the edge reads it (routes and plugins take no config option). */
    config: Readonly<Config>;
    /** The canonical issuer URL. */
    issuer: string;
  }
}

export interface BuildOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logStream?: Writable;
  /** An already open database; by default the app opens (and closes) its own. */
  database?: DatabaseHandle;
  /**
   * The time the authorization flow, sessions, grants, token issuance, introspection and the janitor go
   * by (app.clock); the system clock by default (tests move their own).
   */
  clock?: Clock;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's clock (BuildOptions.clock). */
    clock: Clock;
  }
}

/** Requests Fastify cannot route (a malformed URL or percent-encoding) get the usual JSON error, not Fastify's. */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  reply
    .code(400)
    .header('cache-control', 'no-store')
    .send({
      error: 'invalid_request',
      error_description: error.code === 'FST_ERR_BAD_URL' ? 'malformed URL' : 'malformed request',
    });
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

function trustProxy(value: string): boolean | string {
  if (value === 'true') return true;
  if (value === 'false') return false;
  // Fastify accepts a hop count at run time, but its types only name boolean | string | function.
  if (/^\d+$/.test(value)) return Number(value) as unknown as string;
  return value;
}

/**
 * The listener's timeouts (REQUEST_, HEADERS_, KEEP_ALIVE_, CONNECTION_TIMEOUT_SECONDS), for the public and
 * admin apps alike: Fastify's requestTimeout is 0 by default, so a body sent a byte at a time held a
 * connection open forever.
 */
export function timeoutOptions(config: Readonly<Config>): Pick<
  FastifyServerOptions,
  'requestTimeout' | 'keepAliveTimeout' | 'connectionTimeout' | 'clientErrorHandler'
> & {
  http: ServerOptions;
} {
  const { requestTimeout, headersTimeout, keepAliveTimeout, connectionTimeout } = config.server;
  const shortest = Math.min(headersTimeout, requestTimeout || headersTimeout) * 1000;
  return {
    requestTimeout: requestTimeout * 1000,
    keepAliveTimeout: keepAliveTimeout * 1000,
    connectionTimeout: connectionTimeout * 1000,
    // A timed-out or malformed request gets the OAuth error JSON and a clean close, not Fastify's own body.
    clientErrorHandler,
    http: {
      headersTimeout: headersTimeout * 1000,
      requestTimeout: requestTimeout * 1000,
      // Node enforces both timeouts only when it sweeps its connections, every 30 s by default: sweep
      // often enough that a timeout fires close to when it is due.
      connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(shortest / 4))),
    },
  };
}

/** Builds the Gatehouse Fastify app for a configuration; not yet listening. */
export async function buildApp(config: Readonly<Config>, options: BuildOptions = {}): Promise<FastifyInstance> {
  // Typed as Fastify's base logger so the app is the plain FastifyInstance every plugin and route expects.
  const logger: FastifyBaseLogger = createLogger(config, options.logStream);
  const app = Fastify({
    loggerInstance: logger,
    // One line per request instead of Fastify's two.
    logController: new RequestLogController(config),
    trustProxy: trustProxy(config.server.trustProxy),
    bodyLimit: config.server.bodyLimit,
    ...timeoutOptions(config),
    // A caller's X-Request-Id is kept when it is a plain token, so logs can be joined across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Opening PGlite and migrating (possibly waiting on another replica's migration lock) can outlast
    // Fastify's 10 s default on a busy machine; a start stuck for two minutes (beyond the time it may wait
    // for Postgres to come up) still fails loudly.
    pluginTimeout: 120_000 + config.database.startupWaitSeconds * 1000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    frameworkErrors,
  });

  app.decorate('config', config);
  app.decorate('issuer', config.issuer);
  app.decorate('clock', options.clock ?? systemClock);
  // Hooks every request runs are callback-style: an async hook costs a promise and a microtask each.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // During shutdown, in-flight responses close their keep-alive connection so close() is not held open.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  await app.register(errorHandler);
  // Prometheus metrics, only when the admin listener that serves them (/metrics) is on.
  if (config.admin.port !== 0) await app.register(metricsPlugin);
  else app.decorate('metrics', null);
  await app.register(inputGuard);
  await app.register(formbody, { bodyLimit: config.server.bodyLimit });
  // Before any route is added: it marks every route outside the CORS paths as opted out.
  await app.register(corsPlugin, { registration: config.registration.enabled });
  // Pages (@fastify/view + Eta, stylesheet); the page security headers are registered with the page routes.
  await app.register(viewPlugin);
  await app.register(rateLimitPlugin);
  await app.register(databasePlugin, options.database ? { database: options.database } : {});
  app.decorate('readinessChecks', [
    ['database', databaseCheck(app.database)],
    ['migrations', migrationsCheck(app.database, config.database.schema)],
  ]);
  // The audit event stream (app.audit), before every unit that records events.
  await app.register(auditPlugin);
  // Applies CLIENTS_FILE (a bad file stops the start) and decorates app.clients for the token endpoint.
  await app.register(clientsPlugin);
  // After readinessChecks exists (it adds `signing_keys`), before any route that signs.
  await app.register(keysPlugin);
  // Gatehouse browser sessions (app.sessions), for /authorize, /sign-in/complete, /consent and /sign-out.
  const clock = app.clock;
  await app.register(sessionsPlugin, { clock });
  // Sign-in for the account pages and the connected-apps page (app.accountSignIn, app.connectedApps).
  await app.register(accountPlugin, { clock });
  // The authorization request's lifecycle (app.authorization), for /authorize, /sign-in/complete and /consent.
  await app.register(authorizationPlugin, { clock });
  // /token, /revoke, /introspect and the admin API's user grants (app.tokens, app.userGrants).
  await app.register(tokensPlugin);
  await app.register(janitorPlugin);
  // Back-channel logout (app.logoutDeliveries) and the host's sign-out message (app.hostSignOut).
  await app.register(logoutPlugin);
  await app.register(healthRoutes);
  await app.register(jwksRoute);
  await app.register(metadataRoutes);
  await app.register(tokenRoute);
  // The routes that render pages, in their own scope with the page security headers (@fastify/helmet).
  // Cookies (sessions, browser binding) exist only here too: their hooks stay off the token endpoint.
  await app.register(async function pages(scope) {
    await scope.register(cookie);
    await scope.register(pageSecurityHeaders);
    await scope.register(authorizeRoute);
    await scope.register(signInCompleteRoute);
    await scope.register(signOutRoute);
    await scope.register(consentRoutes);
    await scope.register(connectedAppsRoutes);
  });
  await app.register(revokeRoute);
  await app.register(hostSignOutRoute);
  await app.register(introspectRoute);
  // OpenID Connect Core §5.3 UserInfo.
  await app.register(userinfoRoute);
  // RFC 9126 pushed authorization requests.
  await app.register(parRoute);
  // RFC 7591 / 7592 dynamic registration, off by default: when off /register is the generic 404.
  if (config.registration.enabled) await app.register(registerRoutes);
  return app;
}
