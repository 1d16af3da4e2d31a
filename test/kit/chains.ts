import type { FastifyInstance } from 'fastify';
import { generateToken, hashSecret } from '../../src/oauth/secrets.js';
import { createAuthorizationCode } from '../../src/repositories/authorization-code.repository.js';
import { challengeOf } from './pkce.js';

/** The grant a chain is started for: the client, how it authenticates, and what the user consented to. */
export interface ChainGrant {
  clientId: string;
  /** The client's Authorization header (Basic). */
  authorization: string;
  redirectUri: string;
  scopes: string[];
  resources: string[];
  sub: string;
}

/**
 * Starts a refresh-token chain as a finished authorization would: a code minted directly in the database
 * (the flow's end state), redeemed at `app`'s token endpoint with its PKCE verifier. Returns the first
 * refresh token.
 */
export async function startRefreshChain(app: FastifyInstance, grant: ChainGrant): Promise<string> {
  const code = generateToken();
  const verifier = generateToken();
  await createAuthorizationCode(app.database.db, {
    code_hash: hashSecret(code),
    client_id: grant.clientId,
    redirect_uri: grant.redirectUri,
    redirect_uri_given: true,
    code_challenge: challengeOf(verifier),
    scopes: grant.scopes,
    resources: grant.resources,
    sub: grant.sub,
    auth_time: new Date(Date.now() - 60_000),
    expires_at: new Date(Date.now() + 60_000),
    consumed_at: null,
    family_id: null,
  });
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: grant.authorization },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: grant.redirectUri,
    }).toString(),
  });
  if (res.statusCode !== 200) throw new Error(`redeeming a code: ${res.body}`);
  return res.json<{ refresh_token: string }>().refresh_token;
}
