import type { Db } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import {
  type ClientGrant,
  type RevokedGrants,
  listUserGrants as listGrantRows,
  revokeUserGrants as revokeGrantRows,
} from '../repositories/user-grant.repository.js';
import { endSessionsFor } from '../repositories/session.repository.js';
import { type AuditSink, type ChangedBy, changedBy, noAudit } from './audit/audit-log.js';

const OPERATOR: ChangedBy = { actor: 'admin' };

export type { ClientGrant, RevokedGrants } from '../repositories/user-grant.repository.js';

/** Every client a user has granted something to (remembered consent, live refresh-token chains); for the admin API and the CLI. */
export async function listUserGrants(db: Db, sub: string, clock: Clock): Promise<ClientGrant[]> {
  return listGrantRows(db, sub, clock());
}

/**
 * Ends what a user granted (every client's, or one client's with `clientId`): refresh-token chains,
 * consents, unredeemed codes and, for every client, sessions; the admin API and the CLI share it.
 * Access tokens already issued run until they expire; introspection calls them inactive.
 */
export async function revokeUserGrants(
  db: Db,
  sub: string,
  options: { clientId?: string },
  clock: Clock,
  audit: AuditSink = noAudit,
  by: ChangedBy = OPERATOR,
): Promise<RevokedGrants> {
  const revoked = await revokeGrantRows(db, sub, {
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    now: clock(),
  });
  if (Object.values(revoked).some((n) => n > 0))
    audit.record({
      type: 'consent.revoked',
      subject: sub,
      clientId: options.clientId ?? null,
      // Counts under names the log redaction leaves alone (it hides anything named like a token or code).
      ...changedBy(by, {
        all_clients: options.clientId === undefined,
        refresh: revoked.refresh_tokens,
        codes: revoked.authorization_codes,
        consents: revoked.consents,
        sessions: revoked.sessions,
      }),
    });
  return revoked;
}

/** What ending a user's sessions did. */
export interface EndedUserSessions {
  /** Gatehouse sessions ended. */
  sessions: number;
  /** Back-channel logout tokens queued for the clients those sessions signed in to. */
  logout_tokens: number;
}

/**
 * Signs a user out of Gatehouse everywhere: ends every live session of `sub`, which queues back-channel
 * logout tokens for the clients they signed in to (and revokes their online OpenID Connect refresh
 * chains); other grants stay. The admin API and the CLI share it.
 */
export async function endUserSessions(
  db: Db,
  sub: string,
  clock: Clock,
  audit: AuditSink = noAudit,
  by: ChangedBy = OPERATOR,
): Promise<EndedUserSessions> {
  const ended = await endSessionsFor(db, sub, clock());
  if (ended.sids.length > 0)
    audit.record({
      type: 'session.ended',
      subject: sub,
      ...changedBy(by, { sids: ended.sids, logout_queued: ended.deliveries }),
    });
  return { sessions: ended.sids.length, logout_tokens: ended.deliveries };
}

/** The same operations bound to the app's database and clock, for the admin API. */
export class UserGrants {
  constructor(
    readonly db: () => Db,
    readonly clock: Clock,
    readonly audit: AuditSink = noAudit,
  ) {}

  /** Every client the user has granted something to. */
  list(sub: string): Promise<ClientGrant[]> {
    return listUserGrants(this.db(), sub, this.clock);
  }

  /** Ends what the user granted (every client's, or one client's). */
  revoke(sub: string, options: { clientId?: string } = {}, by?: ChangedBy): Promise<RevokedGrants> {
    return revokeUserGrants(this.db(), sub, options, this.clock, this.audit, by);
  }

  /** Ends the user's Gatehouse sessions (back-channel logout included). */
  endSessions(sub: string, by?: ChangedBy): Promise<EndedUserSessions> {
    return endUserSessions(this.db(), sub, this.clock, this.audit, by);
  }
}
