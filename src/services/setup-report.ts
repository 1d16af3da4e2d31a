import type { Config } from '../config/index.js';
import type { Db } from '../db/database.js';
import { countEnabledClients } from '../repositories/client.repository.js';

/** One thing a flow needs, as the start-up summary and the 503 page report it. */
export interface SetupItem {
  /** What it is: `sign-in`, `scopes`, `resources`, `clients`. */
  name: string;
  ok: boolean;
  /** What is configured, or what is missing and what that breaks. */
  detail: string;
  /** The variable or command that fixes it (only when not ok). */
  fix?: string;
}

/** The guidance for the sign-in item, shared by the start-up summary and the 503 page. */
export const SIGN_IN_FIX =
  "set SIGN_IN_URL (your app's sign-in page) and HANDSHAKE_SECRET (or HOST_JWKS_URL / HOST_PUBLIC_KEY_FILE); docs/handshake.md";

/**
 * What the configuration and the database give a flow (docs/getting-started.md): a host app to sign users in,
 * a scope catalogue and resources for API access tokens, and clients to ask for them. Pure: the client count
 * is given.
 */
export function setupItems(config: Readonly<Config>, clients: number): SetupItem[] {
  const { handshake, policy } = config;
  const hostKeys = handshake.secret !== '' || handshake.hostJwksUrl !== '' || handshake.hostPublicKeyFile !== '';
  const scopes = [...policy.scopes.catalogue.keys()];
  const resources = policy.resources.configured;
  const selfService = [
    config.registration.enabled ? 'dynamic registration (DCR_ENABLED)' : null,
    config.clientIdMetadataDocuments.enabled ? 'client ID metadata documents (CIMD_ENABLED)' : null,
  ].filter((s): s is string => s !== null);
  return [
    handshake.signInUrl !== '' && hostKeys
      ? { name: 'sign-in', ok: true, detail: `users sign in at ${handshake.signInUrl}` }
      : {
          name: 'sign-in',
          ok: false,
          detail:
            handshake.signInUrl === ''
              ? 'no host app to sign users in: /authorize answers 503'
              : 'SIGN_IN_URL is set but no host key verifies its answers',
          fix: SIGN_IN_FIX,
        },
    scopes.length > 0
      ? { name: 'scopes', ok: true, detail: `${scopes.length} in the catalogue (${scopes.join(' ')})` }
      : {
          name: 'scopes',
          ok: false,
          detail: 'no scope catalogue: only OpenID Connect identity scopes (openid, profile, email…) can be granted',
          fix: 'set SCOPES, e.g. SCOPES=\'{"read":"Read your data"}\'',
        },
    resources.length > 0
      ? { name: 'resources', ok: true, detail: `access tokens for ${resources.join(', ')}` }
      : {
          name: 'resources',
          ok: false,
          detail: 'no resource: /token answers invalid_target for API access (only /userinfo tokens are issued)',
          fix: 'set RESOURCES to your API URL(s), e.g. RESOURCES=https://api.example.com',
        },
    clients > 0 || selfService.length > 0
      ? {
          name: 'clients',
          ok: true,
          detail: [clients > 0 ? `${clients} registered` : null, ...selfService.map((s) => `self-service through ${s}`)]
            .filter((s) => s !== null)
            .join('; '),
        }
      : {
          name: 'clients',
          ok: false,
          detail: 'no client is registered and none can register itself',
          fix: 'gatehouse clients create --name "My app" --redirect-uri https://app.example.com/callback (npm run gatehouse -- clients create … in a checkout; on the embedded database with the server stopped), or CLIENTS_FILE, or DCR_ENABLED=true',
        },
  ];
}

/** The setup items of this configuration and database (one count query). */
export async function setupStatus(db: Db, config: Readonly<Config>): Promise<SetupItem[]> {
  return setupItems(config, await countEnabledClients(db));
}

/** One readable line for the start-up log: what is ready and what is missing. */
export function setupSummary(items: readonly SetupItem[]): string {
  const missing = items.filter((i) => !i.ok);
  const parts = items.map((i) => `${i.name} ${i.ok ? 'ok' : 'MISSING'}`).join(', ');
  return missing.length === 0
    ? `setup: ${parts}: ready to serve flows`
    : `setup: ${parts}: ${missing.length} thing(s) a flow needs are missing; each has a line below with its fix`;
}
