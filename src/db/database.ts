import type { Kysely, Transaction } from 'kysely';
import type { AuditEventTable } from './tables/audit-event.table.js';
import type { AuthorizationCodeTable } from './tables/authorization-code.table.js';
import type { AuthorizationRequestTable } from './tables/authorization-request.table.js';
import type { ClientAssertionJtiTable } from './tables/client-assertion-jti.table.js';
import type { ClientTable } from './tables/client.table.js';
import type { ConsentTable } from './tables/consent.table.js';
import type { DpopProofTable } from './tables/dpop-proof.table.js';
import type { GrantedClaimsTable } from './tables/granted-claims.table.js';
import type { GrantRevocationTable } from './tables/grant-revocation.table.js';
import type { HostSignOutJtiTable, LogoutDeliveryTable, SessionClientTable } from './tables/logout.table.js';
import type { PushedAuthorizationRequestTable } from './tables/pushed-authorization-request.table.js';
import type { RefreshTokenTable } from './tables/refresh-token.table.js';
import type { SessionTable } from './tables/session.table.js';
import type { SigningKeyTable } from './tables/signing-key.table.js';

/** Every table Gatehouse owns, in its own Postgres schema. */
export interface Database {
  clients: ClientTable;
  signing_keys: SigningKeyTable;
  authorization_requests: AuthorizationRequestTable;
  sessions: SessionTable;
  consents: ConsentTable;
  authorization_codes: AuthorizationCodeTable;
  refresh_tokens: RefreshTokenTable;
  grant_revocations: GrantRevocationTable;
  session_clients: SessionClientTable;
  logout_deliveries: LogoutDeliveryTable;
  host_sign_out_jtis: HostSignOutJtiTable;
  dpop_proofs: DpopProofTable;
  granted_claims: GrantedClaimsTable;
  pushed_authorization_requests: PushedAuthorizationRequestTable;
  client_assertion_jtis: ClientAssertionJtiTable;
  audit_events: AuditEventTable;
}

/** What repository functions take first: the database or a transaction on it. */
export type Db = Kysely<Database> | Transaction<Database>;

/**
 * A Kysely handle that is not bound to Gatehouse's tables: the schema-level root (migrations, advisory
 * locks, `CREATE SCHEMA`) and precompiled statements built against any table. `any` is Kysely's own
 * convention for this (its migration guide types `up(db: Kysely<any>)`), and it is named once, here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SchemalessDb = Kysely<any>;
