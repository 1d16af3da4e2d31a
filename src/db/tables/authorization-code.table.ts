import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row of `authorization_codes`: single use, stored as a SHA-256 hash. */
export interface AuthorizationCodeTable {
  code_hash: string;
  client_id: string;
  redirect_uri: string;
  /** Whether the authorization request named redirect_uri (then the token request must repeat it). */
  redirect_uri_given: boolean;
  code_challenge: string;
  scopes: string[];
  resources: string[];
  /** RFC 9449 §10: the code may be redeemed only with a DPoP proof by this key (thumbprint). */
  dpop_jkt: Generated<string | null>;
  sub: string;
  auth_time: Date;
  /** The public name (`sid`) of the Gatehouse session that issued the code; null for codes older than it. */
  sid: ColumnType<string | null, string | null | undefined, string | null>;
  /** OIDC: the request's nonce, and the session's acr and amr, for the ID token. */
  nonce: ColumnType<string | null, string | null | undefined, string | null>;
  acr: ColumnType<string | null, string | null | undefined, string | null>;
  amr: ColumnType<string[], string[] | undefined, string[]>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  expires_at: Date;
  consumed_at: Date | null;
  /** The refresh-token chain its redemption started; revoked if the code is replayed. */
  family_id: string | null;
}

export type AuthorizationCodeRow = Selectable<AuthorizationCodeTable>;
export type NewAuthorizationCodeRow = Insertable<AuthorizationCodeTable>;
