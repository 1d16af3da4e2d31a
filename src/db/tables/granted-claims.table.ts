import type { ColumnType, Insertable, Selectable } from 'kysely';

/** Row of `granted_claims`: the host's claims about a user, kept for one client (OIDC /userinfo). */
export interface GrantedClaimsTable {
  sub: string;
  client_id: string;
  /** jsonb: write it as JSON.stringify(obj) for node-postgres. */
  claims: ColumnType<Record<string, unknown>, string, string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export type GrantedClaimsRow = Selectable<GrantedClaimsTable>;
export type NewGrantedClaimsRow = Insertable<GrantedClaimsTable>;
