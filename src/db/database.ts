import type { Kysely, Transaction } from 'kysely';
import type { ClientTable } from './tables/client.table.js';
import type { SigningKeyTable } from './tables/signing-key.table.js';

/** Every table Gatehouse owns, in its own Postgres schema. */
export interface Database {
  clients: ClientTable;
  signing_keys: SigningKeyTable;
}

/** What repository functions take first: the database or a transaction on it. */
export type Db = Kysely<Database> | Transaction<Database>;
