import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { keyEncryptionSecret } from '../../keys/key-encryption.js';
import { dpopNonces } from '../../oauth/dpop-nonce.js';
import { TokenService } from '../../services/tokens/token-service.js';
import { UserGrants } from '../../services/user-grants.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** /token, /revoke and /introspect's application layer. */
    tokens: TokenService;
    /** A user's grants, listed and revoked (the admin API). */
    userGrants: UserGrants;
  }
}

/** Decorates `app.tokens` and `app.userGrants`, built once over the database, keys, clients and clock. */
export default fp(
  async function tokens(app: FastifyInstance) {
    const { config } = app;
    const db = () => app.database.db;
    app.decorate(
      'tokens',
      new TokenService({
        db,
        config,
        scopePolicy: config.policy.scopes,
        resourcePolicy: config.policy.resources,
        signer: () => app.keys.current(),
        clockSkew: config.tokens.clockSkew,
        jwks: () => app.keys.jwks(),
        clients: app.clients,
        clock: app.clock,
        // Every replica shares KEY_ENCRYPTION_SECRET (it decrypts the shared signing keys), so a nonce
        // derived from it is accepted by every replica with nothing stored (RFC 9449 §8).
        dpopNonces: dpopNonces(keyEncryptionSecret(config, app.log)),
        audit: app.audit,
        auditTokens: config.audit.tokenEvents,
      }),
    );
    app.decorate('userGrants', new UserGrants(db, app.clock, app.audit));
  },
  { name: 'tokens', dependencies: ['database', 'clients', 'keys', 'audit'] },
);
