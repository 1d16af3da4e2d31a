import type { Db } from '../../db/database.js';
import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import type { Client } from '../../oauth/client.js';
import {
  type IntrospectingClient,
  type IntrospectionResponse,
  type IntrospectionSources,
  introspect,
} from '../../oauth/introspection.js';
import { hashSecret } from '../../oauth/secrets.js';
import { accessTokenVerifier } from '../../oauth/tokens/access-token-verifier.js';
import { findLiveRefreshToken } from '../../repositories/refresh-token.repository.js';
import { grantRevokedSince } from '../../repositories/user-grant.repository.js';

/** What introspection reads: Gatehouse's published keys, its clients, its database and the time. */
export interface IntrospectionDeps {
  issuer: string;
  /** CLOCK_SKEW_SECONDS: tolerance on an access token's `exp`. */
  clockSkew: number;
  /** The published JWK Set (next, active and retired keys), read on every call. */
  jwks: () => JwkSet;
  clients: { get(clientId: string): Promise<Pick<Client, 'disabled_at'> | undefined> };
  db: () => Db;
  clock: Clock;
}

/** RFC 7662 §2 for an authenticated caller: what Gatehouse tells it about a token. */
export type Introspector = (token: string, caller: IntrospectingClient) => Promise<IntrospectionResponse>;

/** Builds the introspection service: the protocol rules of oauth/introspection.ts over the database and keys. */
export function introspectionService(deps: IntrospectionDeps): Introspector {
  const sources: IntrospectionSources = {
    issuer: deps.issuer,
    verifyAccessToken: accessTokenVerifier(deps.jwks, {
      issuer: deps.issuer,
      clockSkew: deps.clockSkew,
      clock: deps.clock,
    }),
    findLiveRefreshToken: (token, clientId) =>
      findLiveRefreshToken(deps.db(), hashSecret(token), clientId, deps.clock()),
    clientActive: async (clientId) => {
      const client = await deps.clients.get(clientId);
      return client !== undefined && client.disabled_at === null;
    },
    grantRevokedSince: (sub, clientId, issuedAt) => grantRevokedSince(deps.db(), sub, clientId, issuedAt),
  };
  return (token, caller) => introspect(token, caller, sources);
}
