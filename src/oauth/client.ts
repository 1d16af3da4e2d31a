import type { ClientRow } from '../db/tables/client.table.js';

/**
 * A client as the protocol sees it: a frozen stored row (cached rows are shared between requests).
 * The domain type every layer above storage uses; services hand these out.
 */
export type Client = Readonly<ClientRow>;
