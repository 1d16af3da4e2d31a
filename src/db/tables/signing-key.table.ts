import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';

/** Lifecycle of a signing key: published first, then signing, then published until its tokens expire. */
export type SigningKeyState = 'next' | 'active' | 'retired';

/** Row of `signing_keys`: a generated key, its private part encrypted under KEY_ENCRYPTION_SECRET. */
export interface SigningKeyTable {
  kid: string;
  alg: string;
  public_jwk: ColumnType<Record<string, unknown>, string, string>;
  private_key_enc: string;
  state: SigningKeyState;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  /** When a `next` key starts signing. */
  activate_at: Date | null;
  activated_at: Date | null;
  retired_at: Date | null;
  /** When a retired key leaves the JWKS: every token it signed has expired by then. */
  expires_at: Date | null;
}

export type SigningKeyRow = Selectable<SigningKeyTable>;
export type NewSigningKeyRow = Insertable<SigningKeyTable>;
export type SigningKeyUpdate = Updateable<SigningKeyTable>;
