import type { ColumnType, Insertable, Selectable } from 'kysely';

/** Row of `pushed_authorization_requests`: an RFC 9126 pushed authorization request waiting for /authorize. */
export interface PushedAuthorizationRequestTable {
  /** SHA-256 of the random part of the request_uri handed to the client (the value itself is never stored). */
  request_uri_hash: string;
  client_id: string;
  /** The authorization request parameters as pushed (a repeated one is an array); jsonb. */
  params: ColumnType<Record<string, string | string[]>, string, never>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  expires_at: Date;
  /** Set once, atomically, when /authorize used the request_uri (RFC 9126 §4: one-time use). */
  consumed_at: Date | null;
}

export type PushedAuthorizationRequestRow = Selectable<PushedAuthorizationRequestTable>;
export type NewPushedAuthorizationRequestRow = Insertable<PushedAuthorizationRequestTable>;
