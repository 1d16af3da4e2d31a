import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Row of `authorization_requests`: a validated /authorize request waiting for sign-in and consent. */
export interface AuthorizationRequestTable {
  id: string;
  client_id: string;
  redirect_uri: string;
  /** Whether the authorization request named redirect_uri (then the token request must repeat it). */
  redirect_uri_given: boolean;
  state: string | null;
  scopes: string[];
  resources: string[];
  code_challenge: string;
  prompt: string | null;
  max_age: number | null;
  login_hint: string | null;
  ui_locales: string | null;
  /** RFC 9449 §10: the thumbprint /authorize named in dpop_jkt; the code exchange must prove that key. */
  dpop_jkt: Generated<string | null>;
  /** OIDC Core §3.1.2.1 nonce, echoed in the ID token; null when none was sent. */
  nonce: ColumnType<string | null, string | null | undefined, string | null>;
  /** OIDC Core §3.1.2.1 acr_values, passed to the host. */
  acr_values: ColumnType<string | null, string | null | undefined, string | null>;
  /** The sub of a verified id_token_hint (OIDC Core §3.1.2.1), passed to the host and checked against the session. */
  id_token_hint_sub: ColumnType<string | null, string | null | undefined, string | null>;
  /** SHA-256 of the browser-binding cookie set when the request was made. */
  binding_hash: string;
  /** The Gatehouse session that signed in for this request (hash of its id). */
  session_hash: string | null;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  expires_at: Date;
  /** Set once, atomically, when the host's sign-in answer is accepted. */
  answered_at: Date | null;
  /** Set once, atomically, when a code or an error was sent to the client. */
  completed_at: Date | null;
}

export type AuthorizationRequestRow = Selectable<AuthorizationRequestTable>;
export type NewAuthorizationRequestRow = Insertable<AuthorizationRequestTable>;
