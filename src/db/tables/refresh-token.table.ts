import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row of `refresh_tokens`: one generation of a rotating chain (family). */
export interface RefreshTokenTable {
  token_hash: string;
  family_id: string;
  generation: number;
  client_id: string;
  sub: string;
  scopes: string[];
  resources: string[];
  auth_time: Date;
  /** RFC 9449 §5: a public client's chain is bound to this key (thumbprint); every refresh must prove it. */
  dpop_jkt: Generated<string | null>;
  /** OIDC Core §12.2: the original sign-in's acr, amr and session id, for an ID token issued on refresh. */
  acr: ColumnType<string | null, string | null | undefined, string | null>;
  amr: ColumnType<string[], string[] | undefined, string[]>;
  sid: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  expires_at: Date;
  rotated_at: Date | null;
  revoked_at: Date | null;
  /**
   * Once rotated: the successor's token value, sealed under a key derived from this generation's own token
   * value (oauth/tokens/refresh-successor.ts), so a client's retry within the grace window gets it again.
   */
  successor_sealed: string | null;
}

export type RefreshTokenRow = Selectable<RefreshTokenTable>;
export type NewRefreshTokenRow = Insertable<RefreshTokenTable>;
