import type { Config } from '../config/index.js';
import { SUPPORTED_LOCALES } from '../lib/i18n.js';
import { DPOP_SIGNING_ALGS } from '../oauth/dpop.js';
import { userinfoEndpoint } from '../oauth/tokens/id-token.js';
import { ASSERTION_ALGS } from '../oauth/client-metadata.js';

/** The endpoints a running Gatehouse actually serves; the discovery document never advertises what is off. */
export interface Features {
  authorizationCode: boolean;
  refreshTokens: boolean;
  revocation: boolean;
  introspection: boolean;
  registration: boolean;
  /** Client-id documents: Client ID Metadata Documents (CIMD_ENABLED). */
  clientIdDocuments: boolean;
}

/** The features this build serves whatever the configuration says. */
export const FEATURES: Omit<Features, 'registration' | 'clientIdDocuments'> = {
  authorizationCode: true,
  refreshTokens: true,
  revocation: true,
  introspection: true,
};

/** The features a configuration turns on: the build's, plus dynamic registration (DCR_ENABLED) and client-id documents (CIMD_ENABLED). */
export function featuresOf(
  config: Pick<Config, 'registration'> & Partial<Pick<Config, 'clientIdMetadataDocuments'>>,
): Features {
  return {
    ...FEATURES,
    registration: config.registration.enabled,
    clientIdDocuments: config.clientIdMetadataDocuments?.enabled ?? false,
  };
}

/** The discovery document: RFC 8414 authorization server metadata, built once from configuration. */
export function discoveryDocument(
  config: Readonly<Config>,
  features: Features = featuresOf(config),
): Record<string, unknown> {
  const base = config.issuer;
  const grantTypes = ['client_credentials'];
  if (features.authorizationCode) grantTypes.unshift('authorization_code');
  if (features.refreshTokens) grantTypes.push('refresh_token');
  // private_key_jwt: RFC 7523 §2.2, OpenID Connect Core §9.
  const confidentialMethods = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
  const authMethods = [...confidentialMethods];
  if (features.authorizationCode) authMethods.push('none');
  // RFC 8414 §2: the algorithms private_key_jwt assertions may be signed with (asymmetric only).
  const assertionAlgs = [...ASSERTION_ALGS];

  const doc: Record<string, unknown> = { issuer: base };
  if (features.authorizationCode) doc.authorization_endpoint = `${base}/authorize`;
  doc.token_endpoint = `${base}/token`;
  doc.jwks_uri = `${base}/.well-known/jwks.json`;
  if (features.registration) doc.registration_endpoint = `${base}/register`;
  const scopes = [...config.policy.scopes.catalogue.keys()];
  if (scopes.length > 0) doc.scopes_supported = scopes;
  doc.response_types_supported = ['code'];
  doc.response_modes_supported = ['query'];
  doc.grant_types_supported = grantTypes;
  doc.token_endpoint_auth_methods_supported = authMethods;
  doc.token_endpoint_auth_signing_alg_values_supported = assertionAlgs;
  if (features.revocation) {
    doc.revocation_endpoint = `${base}/revoke`;
    doc.revocation_endpoint_auth_methods_supported = authMethods;
    doc.revocation_endpoint_auth_signing_alg_values_supported = assertionAlgs;
  }
  if (features.introspection) {
    doc.introspection_endpoint = `${base}/introspect`;
    doc.introspection_endpoint_auth_methods_supported = confidentialMethods;
    doc.introspection_endpoint_auth_signing_alg_values_supported = assertionAlgs;
  }
  if (features.authorizationCode) {
    // RFC 9126 §5.
    doc.pushed_authorization_request_endpoint = `${base}/par`;
    doc.require_pushed_authorization_requests = config.par.required;
  }
  // OAuth 2.1 §4.1.1: PKCE with S256 only; plain is refused.
  doc.code_challenge_methods_supported = ['S256'];
  // RFC 9207: `iss` in authorization responses.
  doc.authorization_response_iss_parameter_supported = true;
  // RFC 9449 §5.1: DPoP proofs are accepted at the token endpoint, signed with these algorithms.
  doc.dpop_signing_alg_values_supported = [...DPOP_SIGNING_ALGS];
  // draft-ietf-oauth-client-id-metadata-document-02 §6: only while client-id documents are resolved.
  if (features.clientIdDocuments) doc.client_id_metadata_document_supported = true;
  // RFC 8414 §2 (and OIDC Discovery §3): the languages the pages are written in, each with a full catalogue.
  if (features.authorizationCode) doc.ui_locales_supported = [...SUPPORTED_LOCALES];
  return doc;
}

/**
 * OpenID Connect discovery: the same document plus what OIDC Discovery 1.0 §3 defines, each saying only
 * what is implemented (docs/openid-connect.md): the access scopes of the catalogue then the identity
 * scopes, the claims those release, ID tokens signed with the active key's alg, and no request objects
 * or claims parameter.
 */
export function openIdConfiguration(
  config: Readonly<Config>,
  features: Features = featuresOf(config),
): Record<string, unknown> {
  const { catalogue, identity } = config.policy.scopes;
  const claims = new Set(['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'sid']);
  for (const scope of identity.values()) for (const claim of scope.claims) claims.add(claim);
  return {
    ...discoveryDocument(config, features),
    userinfo_endpoint: userinfoEndpoint(config.issuer),
    scopes_supported: [...new Set([...catalogue.keys(), ...identity.keys()])],
    claims_supported: [...claims],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [config.keys.signingAlg],
    // OpenID Connect RP-Initiated Logout 1.0 §2.1 and Back-Channel Logout 1.0 §2.1: /sign-out, and
    // logout tokens that always carry `sid`.
    end_session_endpoint: `${config.issuer}/sign-out`,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    // OIDC Core §5.5 and §6: neither the claims parameter nor request objects are supported.
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    claim_types_supported: ['normal'],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
  };
}

/** The RFC 8414 §3.1 path-inserted location of a discovery document for an issuer with a path, or null. */
export function pathInsertedDiscoveryPath(issuer: string, wellKnown: string): string | null {
  const path = new URL(issuer).pathname.replace(/\/$/, '');
  return path === '' ? null : `/.well-known/${wellKnown}${path}`;
}
