import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row of `sessions`: a Gatehouse browser session; the cookie holds the id, only its hash is stored. */
export interface SessionTable {
  id_hash: string;
  /** The session's public name (OIDC `sid`): random, unique, set by the database; never the cookie. */
  sid: Generated<string>;
  sub: string;
  auth_time: Date;
  amr: ColumnType<string[], string[] | undefined, string[]>;
  acr: string | null;
  /** The host's `claims` (email, name…); jsonb, so write it as JSON.stringify(obj) for node-postgres. */
  claims: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  last_seen_at: ColumnType<Date, Date | string | undefined, Date | string>;
  expires_at: Date;
  revoked_at: Date | null;
}

export type SessionRow = Selectable<SessionTable>;
export type NewSessionRow = Insertable<SessionTable>;
