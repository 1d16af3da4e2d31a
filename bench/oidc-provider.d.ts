// The few parts of oidc-provider 9 (which ships no types) that bench/peer-server.ts uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    grant_types?: string[];
    redirect_uris?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
  }

  export interface Client {
    grantTypeAllowed(type: string): boolean;
  }

  interface Model {
    save(): Promise<string>;
  }

  interface GrantModel extends Model {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    Client: { find(id: string): Promise<Client | undefined> };
    Grant: new (properties: { accountId: string; clientId: string }) => GrantModel;
    AuthorizationCode: new (properties: Record<string, unknown>) => Model;
  }
}

// Its own in-memory adapter and the LRU map it stores into (deep imports: the package has no exports map).
declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  export default class MemoryAdapter {
    constructor(model: string, store: unknown);
  }
}

declare module 'oidc-provider/lib/helpers/lru.js' {
  export default class LRU {
    constructor(options: { maxSize: number });
  }
}
