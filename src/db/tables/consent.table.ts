import type { ColumnType, Insertable, Selectable } from 'kysely';

/** Row of `consents`: what a user let a client have, remembered per (user, client). */
export interface ConsentTable {
  sub: string;
  client_id: string;
  scopes: string[];
  resources: string[];
  created_at: ColumnType<Date, Date | string | undefined, never>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export type ConsentRow = Selectable<ConsentTable>;
export type NewConsentRow = Insertable<ConsentTable>;
