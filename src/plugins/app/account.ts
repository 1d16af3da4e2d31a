import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { keyEncryptionSecret } from '../../keys/key-encryption.js';
import type { Clock } from '../../lib/clock.js';
import { CsrfTokens } from '../../oauth/csrf.js';
import { AccountSignIn } from '../../services/account/account-sign-in.js';
import { ConnectedApps } from '../../services/account/connected-apps.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Sign-ins for Gatehouse's own account pages (their answers arrive at /sign-in/complete). */
    accountSignIn: AccountSignIn;
    /** The connected-apps page: list and revoke a user's apps. */
    connectedApps: ConnectedApps;
  }
}

export interface AccountPluginOptions {
  /** The time the pages go by (BuildOptions.clock). */
  clock: Clock;
}

/** Decorates `app.accountSignIn` and `app.connectedApps` (docs/connected-apps.md). */
export default fp<AccountPluginOptions>(
  async function account(app: FastifyInstance, { clock }) {
    const { config } = app;
    // Derived from KEY_ENCRYPTION_SECRET, never random per process: any replica may receive the answer or the form.
    const csrf = new CsrfTokens(keyEncryptionSecret(config, app.log));
    const accountSignIn = new AccountSignIn({
      config,
      sessions: app.sessions,
      signer: () => app.keys.current(),
      csrf,
      clock,
    });
    app.decorate('accountSignIn', accountSignIn);
    app.decorate(
      'connectedApps',
      new ConnectedApps({
        db: app.database.db,
        config,
        scopePolicy: config.policy.scopes,
        resourceNames: config.policy.resourceNames,
        clients: app.clients,
        sessions: app.sessions,
        csrf,
        accountSignIn,
        clock,
        audit: app.audit,
      }),
    );
  },
  { name: 'account', dependencies: ['database', 'clients', 'keys', 'sessions', 'audit'] },
);
