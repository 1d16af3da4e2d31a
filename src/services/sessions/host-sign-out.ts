import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import type { Database, Db } from '../../db/database.js';
import type { HostKeys } from '../../handshake/host-keys.js';
import { HostSignOutError, verifyHostSignOut } from '../../handshake/host-sign-out.js';
import type { Clock } from '../../lib/clock.js';
import { rememberHostSignOutJti } from '../../repositories/host-sign-out.repository.js';
import { type EndedSessions, endSessionBySid, endSessionsFor } from '../../repositories/session.repository.js';

/** What the host's sign-out message ended. */
export interface HostSignOutResult {
  /** Gatehouse sessions ended. */
  sessions: number;
  /** Back-channel logout tokens queued for the clients those sessions signed in to. */
  logoutTokens: number;
}

/** What accepting a host sign-out needs. */
export interface HostSignOutDeps {
  db: Kysely<Database>;
  /** The host's keys (those of login_response), or null when the handshake is not configured. */
  hostKeys: HostKeys | null;
  config: Readonly<Pick<Config, 'issuer' | 'handshake' | 'tokens'>>;
  clock: Clock;
}

/**
 * The host app telling Gatehouse that a user signed out there (docs/handshake.md): a signed `sign_out`
 * message, verified like login_response, accepted once (its jti), that ends one session (`sid`, of `sub`
 * when both are given) or every live session of `sub`, which queues back-channel logout tokens for
 * every client those sessions signed in to. Ending, queueing and remembering the jti are one transaction.
 */
export class HostSignOutService {
  constructor(private readonly deps: HostSignOutDeps) {}

  /** Verifies and applies a sign-out message; throws HostSignOutError (400, or 503 for the host's JWKS). */
  async accept(token: string): Promise<HostSignOutResult> {
    const { db, hostKeys, config, clock } = this.deps;
    if (!hostKeys) throw new HostSignOutError('the host handshake is not configured on this server');
    const now = clock();
    const message = await verifyHostSignOut(token, hostKeys, {
      issuer: config.issuer,
      hostId: config.handshake.hostId,
      clockSkew: config.tokens.clockSkew,
      maxAge: config.handshake.responseMaxAge,
      now,
    });
    const ended = await db.transaction().execute(async (tx: Db): Promise<EndedSessions> => {
      const keepUntil = new Date((message.exp + config.tokens.clockSkew) * 1000);
      if (!(await rememberHostSignOutJti(tx, message.jti, keepUntil, now)))
        throw new HostSignOutError('this sign_out message has already been used (its jti is accepted once)');
      if (message.sid !== null) return endSessionBySid(tx, message.sid, message.sub, now);
      return endSessionsFor(tx, message.sub!, now);
    });
    return { sessions: ended.sids.length, logoutTokens: ended.deliveries };
  }
}
