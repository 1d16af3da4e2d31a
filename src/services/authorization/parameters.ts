import { checkCodeChallenge } from '../../oauth/checks/pkce.js';
import { resolveRedirectUri } from '../../oauth/checks/redirect-uri.js';
import { type ResourcePolicy, resolveResources } from '../../oauth/checks/resource.js';
import { resolveScopes, type ScopePolicy } from '../../oauth/checks/scope.js';
import type { Client } from '../../oauth/client.js';
import { JKT_FORM } from '../../oauth/dpop.js';
import { OAuthError } from '../../oauth/errors.js';

/** /authorize parameters as the edge parsed them (query or form); a repeated one is an array. */
export type AuthorizeParams = Readonly<Record<string, string | string[]>>;

/** Parameters that RFC 8707 lets a client repeat; any other repeated parameter is refused (RFC 6749 §3.1). */
const REPEATABLE = new Set(['resource']);
const PROMPTS = new Set(['none', 'login', 'consent']);
const MAX = 2048;

/** The validated rest of an authorization request (after its client and redirect URI). */
export interface ValidatedRequest {
  scopes: string[];
  resources: string[];
  codeChallenge: string;
  prompt: string | null;
  maxAge: number | null;
  loginHint: string | null;
  uiLocales: string | null;
  /** RFC 9449 §10: the DPoP key (thumbprint) the code is bound to. */
  dpopJkt: string | null;
}

/** What the client registry answers for /authorize: the client, or why there is none. */
export type AuthorizationClientLookup =
  { client: Client; problem?: undefined } | { client: undefined; problem: string | null };

/** The one parameter `name`: undefined when absent or empty (RFC 6749 §3.1), refused when repeated or too long. */
export function single(params: AuthorizeParams, name: string): string | undefined {
  const value = params[name];
  if (Array.isArray(value))
    throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`, { redirectable: true });
  // RFC 6749 §3.1: a parameter without a value is treated as omitted.
  if (value === undefined || value === '') return undefined;
  if (value.length > MAX)
    throw new OAuthError('invalid_request', `parameter ${name} is too long`, { redirectable: true });
  return value;
}

function notRedirectable(fn: () => string | undefined): string | undefined {
  try {
    return fn();
  } catch (err) {
    throw err instanceof OAuthError ? new OAuthError(err.error, err.description) : err;
  }
}

/** Steps 1-2 (never redirected, RFC 6749 §4.1.2.1): the client and its redirect URI. */
export async function clientAndRedirect(
  lookup: (clientId: string) => Promise<AuthorizationClientLookup>,
  params: AuthorizeParams,
): Promise<{ client: Client; redirectUri: string; given: boolean }> {
  const clientId = notRedirectable(() => single(params, 'client_id'));
  if (clientId === undefined) throw new OAuthError('invalid_request', 'client_id is required');
  const { client, problem } = await lookup(clientId);
  // draft-ietf-oauth-client-id-metadata-document-02 §5.1: a client_id URL whose document cannot be used
  // aborts the request, on a page saying why (the redirect URI is not trusted).
  if (problem) throw new OAuthError('invalid_client', `client ${clientId}: ${problem}`, { status: 400 });
  if (!client || client.disabled_at) throw new OAuthError('invalid_request', 'unknown or disabled client');
  const requested = notRedirectable(() => single(params, 'redirect_uri'));
  return { client, redirectUri: resolveRedirectUri(client, requested), given: requested !== undefined };
}

/** Steps 3+ (redirected to the now-validated redirect URI): everything else, in RFC 6749 §4.1.1 order. */
export function validateRest(
  params: AuthorizeParams,
  client: Client,
  scopePolicy: ScopePolicy,
  resourcePolicy: ResourcePolicy,
): ValidatedRequest {
  const redirectable = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof OAuthError) throw new OAuthError(err.error, err.description, { redirectable: true });
      throw err;
    }
  };
  for (const [name, value] of Object.entries(params)) {
    if (Array.isArray(value) && !REPEATABLE.has(name))
      throw new OAuthError('invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`, { redirectable: true });
  }
  const responseType = single(params, 'response_type');
  if (responseType === undefined)
    throw new OAuthError('invalid_request', 'response_type is required', { redirectable: true });
  if (responseType !== 'code')
    throw new OAuthError('unsupported_response_type', 'only response_type=code is supported', { redirectable: true });
  if (!client.grant_types.includes('authorization_code')) {
    throw new OAuthError('unauthorized_client', 'this client may not use the authorization code grant', {
      redirectable: true,
    });
  }
  // RFC 9101 request objects and RFC 9126 pushed requests are not supported.
  if (single(params, 'request') !== undefined || single(params, 'request_uri') !== undefined) {
    throw new OAuthError('invalid_request', 'request objects are not supported', { redirectable: true });
  }
  const codeChallenge = checkCodeChallenge(single(params, 'code_challenge'), single(params, 'code_challenge_method'));
  let scopes: string[] = [];
  redirectable(() => {
    scopes = resolveScopes(single(params, 'scope'), client, scopePolicy);
  });
  const raw = params.resource;
  const requestedResources = (raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]).filter((r) => r !== '');
  if (requestedResources.length > 16)
    throw new OAuthError('invalid_request', 'too many resource parameters', { redirectable: true });
  let resources: string[] = [];
  redirectable(() => {
    resources = resolveResources(requestedResources, client, resourcePolicy);
  });
  const promptValue = single(params, 'prompt');
  const prompts = promptValue === undefined ? [] : promptValue.split(' ').filter(Boolean);
  // OIDC Core §3.1.2.1 allows a list, but none/login/consent are mutually exclusive in practice.
  if (prompts.length > 1 || prompts.some((p) => !PROMPTS.has(p))) {
    throw new OAuthError('invalid_request', 'prompt must be one of none, login or consent', { redirectable: true });
  }
  const maxAgeValue = single(params, 'max_age');
  if (maxAgeValue !== undefined && !/^\d{1,9}$/.test(maxAgeValue))
    throw new OAuthError('invalid_request', 'max_age must be a non-negative integer', { redirectable: true });
  // RFC 9449 §10: dpop_jkt is the RFC 7638 SHA-256 thumbprint of the key the code exchange must prove.
  const dpopJkt = single(params, 'dpop_jkt');
  if (dpopJkt !== undefined && !JKT_FORM.test(dpopJkt))
    throw new OAuthError('invalid_request', 'dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)', {
      redirectable: true,
    });
  return {
    scopes,
    resources,
    codeChallenge,
    prompt: prompts[0] ?? null,
    maxAge: maxAgeValue === undefined ? null : Number(maxAgeValue),
    loginHint: single(params, 'login_hint') ?? null,
    uiLocales: single(params, 'ui_locales') ?? null,
    dpopJkt: dpopJkt ?? null,
  };
}
