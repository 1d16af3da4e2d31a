import type { ColumnType, Insertable, Selectable } from 'kysely';

/** Row of `grant_revocations`: a user's grants revoked at a moment, for every client (null) or one. */
export interface GrantRevocationTable {
  sub: string;
  client_id: string | null;
  revoked_at: ColumnType<Date, Date | string | undefined, never>;
}

export type GrantRevocationRow = Selectable<GrantRevocationTable>;
export type NewGrantRevocationRow = Insertable<GrantRevocationTable>;
