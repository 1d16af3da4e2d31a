import type { Db } from '../../db/database.js';
import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import type { Client } from '../../oauth/client.js';
import { OAuthError } from '../../oauth/errors.js';
import type { GrantClient, GrantContext, TokenParams, TokenResponse } from '../../oauth/grants/grant.js';
import { tokenGrants } from './index.js';
import { type Introspector, introspectionService } from './introspection.js';
import { revokeToken } from './revocation.js';

/** What the token endpoints need, built once at start. */
export interface TokenServiceDeps extends GrantContext {
  db: () => Db;
  /** CLOCK_SKEW_SECONDS, for introspection's `exp` check. */
  clockSkew: number;
  /** The published JWK Set, for introspecting access tokens. */
  jwks: () => JwkSet;
  clients: { get(clientId: string): Promise<Pick<Client, 'disabled_at'> | undefined> };
  clock: Clock;
}

/**
 * The token endpoints' application layer: `/token` (grant dispatch), `/revoke` and `/introspect`. The
 * routes authenticate the client and hand over plain parameters; nothing here knows HTTP.
 */
export class TokenService {
  readonly #deps: TokenServiceDeps;
  readonly #introspect: Introspector;

  constructor(deps: TokenServiceDeps) {
    this.#deps = deps;
    this.#introspect = introspectionService({
      issuer: deps.config.issuer,
      clockSkew: deps.clockSkew,
      jwks: deps.jwks,
      clients: deps.clients,
      db: deps.db,
      clock: deps.clock,
    });
  }

  /** Whether `grant_type` names a grant Gatehouse serves; checked before the client is authenticated. */
  supports(grantType: string): boolean {
    return tokenGrants.has(grantType);
  }

  /** RFC 6749 §5: runs the grant for an authenticated client. */
  async issue(params: TokenParams, client: GrantClient): Promise<TokenResponse> {
    const grant = tokenGrants.get(params.grant_type);
    if (!grant) throw new OAuthError('unsupported_grant_type', `unsupported grant_type: ${params.grant_type}`);
    // RFC 6749 §5.2 unauthorized_client: the client is not allowed this grant type.
    if (!client.grant_types.includes(grant.grantType)) {
      throw new OAuthError('unauthorized_client', `this client may not use ${grant.grantType}`);
    }
    return grant.handle(params, client, this.#deps);
  }

  /** RFC 7009 §2.1: revokes the caller's refresh token's chain; silent about anything else. */
  async revoke(token: string, clientId: string): Promise<void> {
    await revokeToken(this.#deps.db(), token, clientId, this.#deps.clock);
  }

  /** RFC 7662 §2: what the authenticated caller may learn about a token. */
  introspect(...args: Parameters<Introspector>): ReturnType<Introspector> {
    return this.#introspect(...args);
  }
}
