import type { Db } from '../../db/database.js';
import type { AuditSink } from '../audit/audit-log.js';
import type { DpopProof } from '../../oauth/dpop.js';
import type { GrantClient, GrantContext, TokenParams, TokenResponse } from '../../oauth/grants/grant.js';

/** What a grant needs beyond the protocol context: the database it redeems and rotates in. */
export interface TokenContext extends GrantContext {
  db: () => Db;
}

/** One grant type's module: `{ grantType, handle }`, dispatched by grant_type through a Map. */
export interface TokenGrant {
  readonly grantType: string;
  /**
   * `proof`: the request's checked, not replayed DPoP proof (RFC 9449), if one came; `audit`: where a
   * replay it detects is reported (stamped with the request's address).
   */
  handle(
    params: TokenParams,
    client: GrantClient,
    ctx: TokenContext,
    proof?: DpopProof,
    audit?: AuditSink,
  ): Promise<TokenResponse>;
}
