import * as authorizationCode from './authorization-code.js';
import * as clientCredentials from './client-credentials.js';
import type { TokenGrant } from './grant.js';
import * as refreshToken from './refresh-token.js';

export type { TokenContext, TokenGrant } from './grant.js';

/** The grant types the token endpoint serves, by grant_type (RFC 6749 §4.1.3, §4.4, §6). */
export const tokenGrants: ReadonlyMap<string, TokenGrant> = new Map(
  [authorizationCode, clientCredentials, refreshToken].map((grant): [string, TokenGrant] => [grant.grantType, grant]),
);
