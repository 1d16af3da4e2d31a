import type { ParseArgsConfig } from 'node:util';

// The flags and help of `gatehouse clients`, apart from the command itself so the CLI's parser and help
// load without the client services.

/** Flags of `gatehouse clients`, for the CLI's parseArgs. */
export const CLIENTS_OPTIONS = {
  'client-id': { type: 'string' },
  name: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  'auth-method': { type: 'string' },
  scope: { type: 'string', multiple: true },
  'default-scope': { type: 'string', multiple: true },
  resource: { type: 'string', multiple: true },
  'application-type': { type: 'string' },
  'client-uri': { type: 'string' },
  'logo-uri': { type: 'string' },
  'policy-uri': { type: 'string' },
  'tos-uri': { type: 'string' },
  contact: { type: 'string', multiple: true },
  'skip-consent': { type: 'boolean' },
  'backchannel-logout-uri': { type: 'string' },
  'backchannel-logout-session-required': { type: 'boolean' },
  'no-backchannel-logout-session-required': { type: 'boolean' },
  'id-token-alg': { type: 'string' },
  'default-max-age': { type: 'string' },
  'require-auth-time': { type: 'boolean' },
  'no-require-auth-time': { type: 'boolean' },
  'no-skip-consent': { type: 'boolean' },
  'dpop-bound-access-tokens': { type: 'boolean' },
  'no-dpop-bound-access-tokens': { type: 'boolean' },
  jwks: { type: 'string' },
  'jwks-uri': { type: 'string' },
  'auth-signing-alg': { type: 'string' },
  'require-par': { type: 'boolean' },
  'no-require-par': { type: 'boolean' },
  'security-profile': { type: 'string' },
  disable: { type: 'boolean' },
  enable: { type: 'boolean' },
  'unused-days': { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** Usage lines of `gatehouse clients`, for the CLI's help text. */
export const CLIENTS_USAGE = `  clients list               list clients
  clients show <id>          show one client
  clients create --name N [flags]
                             create a client; prints its client_id and, once, its secret; without
                             --grant-type it gets authorization_code and refresh_token
  clients update <id> [flags]
                             change a client; --disable / --enable switch it off or on
  clients delete <id>        delete a client with its grants and tokens
  clients rotate-secret <id> give a client a new secret (printed once); the old one stops working
  clients prune-metadata-documents [--unused-days N]
                             delete metadata-document clients unused for N days (default 30) with no
                             live authorization request, code, refresh token or consent
                             client flags: --name, --client-id,
                             --auth-method client_secret_basic|client_secret_post|private_key_jwt|none,
                             --jwks-uri URL or --jwks '{"keys":[...]}' (private_key_jwt public keys),
                             --auth-signing-alg ES256|PS256|RS256|EdDSA|Ed25519, --require-par / --no-require-par,
                             --security-profile fapi2|none,
                             --application-type web|native, --skip-consent / --no-skip-consent,
                             --dpop-bound-access-tokens / --no-dpop-bound-access-tokens, --client-uri,
                             --logo-uri, --policy-uri, --tos-uri, --backchannel-logout-uri (empty: none),
                             --backchannel-logout-session-required / --no-backchannel-logout-session-required;
                             repeatable: --redirect-uri, --grant-type, --scope,
                             --default-scope, --resource, --post-logout-redirect-uri, --contact;
                             OpenID Connect: --id-token-alg ALG, --default-max-age SECONDS,
                             --require-auth-time / --no-require-auth-time`;
