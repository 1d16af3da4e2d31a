import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { loadHostKeys } from '../../handshake/host-keys.js';
import { keyEncryptionSecret } from '../../keys/key-encryption.js';
import type { Clock } from '../../lib/clock.js';
import { CsrfTokens } from '../../oauth/csrf.js';
import { idTokenHintVerifier } from '../../oauth/tokens/id-token.js';
import { AuthorizationService } from '../../services/authorization/authorization-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The authorization request's lifecycle: /authorize, /sign-in/complete and /consent call it. */
    authorization: AuthorizationService;
  }
}

export interface AuthorizationPluginOptions {
  /** The time the flow goes by (BuildOptions.clock). */
  clock: Clock;
}

/** Decorates `app.authorization`: loads the host's keys (a bad key file stops the start) and the form CSRF key. */
export default fp<AuthorizationPluginOptions>(
  async function authorization(app: FastifyInstance, { clock }) {
    const { config } = app;
    const service = new AuthorizationService({
      db: app.database.db,
      config,
      scopePolicy: config.policy.scopes,
      resourcePolicy: config.policy.resources,
      resourceNames: config.policy.resourceNames,
      clients: app.clients,
      sessions: app.sessions,
      signer: () => app.keys.current(),
      hostKeys: await loadHostKeys(config),
      // Derived from KEY_ENCRYPTION_SECRET, never random per process: a form may be posted to another replica.
      csrf: new CsrfTokens(keyEncryptionSecret(config, app.log)),
      idTokenHint: idTokenHintVerifier(() => app.keys.jwks(), {
        issuer: config.issuer,
        clockSkew: config.tokens.clockSkew,
        // No session outlives this: an older ID token names none the user could still have.
        maxAge: config.flow.sessionAbsoluteTtl,
        clock,
      }),
      // Answers for the account pages arrive at /sign-in/complete too (docs/connected-apps.md).
      accountSignIn: app.accountSignIn,
      clock,
      audit: app.audit,
    });
    app.decorate('authorization', service);
  },
  { name: 'authorization', dependencies: ['database', 'clients', 'keys', 'sessions', 'audit', 'account'] },
);
