import type { ClientRow } from '../../db/tables/client.table.js';
import type { Client } from '../../oauth/client.js';

/** A stored row as a Client: frozen, arrays too, since cached clients are shared between requests. */
export function frozenClient(row: ClientRow): Client {
  for (const value of Object.values(row)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze(row);
}
