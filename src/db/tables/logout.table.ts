import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row of `session_clients`: a client a Gatehouse session issued a code to (Back-Channel Logout §2.3). */
export interface SessionClientTable {
  sid: string;
  client_id: string;
  sub: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

/** Row of `logout_deliveries`: a logout token still to POST to a client's backchannel_logout_uri (the outbox). */
export interface LogoutDeliveryTable {
  id: Generated<string>;
  client_id: string;
  sub: string;
  /** The ended session's `sid`. */
  sid: string | null;
  /** Attempts started so far (one is counted when a replica claims the row). */
  attempts: Generated<number>;
  next_attempt_at: Date;
  /** Why the last attempt failed (status or network reason; never a token). */
  last_error: string | null;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

/** Row of `host_sign_out_jtis`: a host sign-out message already accepted, kept until it expires. */
export interface HostSignOutJtiTable {
  jti: string;
  expires_at: Date;
}

export type LogoutDeliveryRow = Selectable<LogoutDeliveryTable>;
export type NewLogoutDeliveryRow = Insertable<LogoutDeliveryTable>;
