import { checkCodeChallenge } from '../../oauth/checks/pkce.js';
import { resolveRedirectUri } from '../../oauth/checks/redirect-uri.js';
import { type ResourcePolicy, resolveResources } from '../../oauth/checks/resource.js';
import { onlyIdentityScopes, resolveScopes, type ScopePolicy } from '../../oauth/checks/scope.js';
import type { Client } from '../../oauth/client.js';
import { JKT_FORM } from '../../oauth/dpop.js';
import { OAuthError } from '../../oauth/errors.js';
import { MAX_NONCE_LENGTH } from '../../oauth/tokens/id-token.js';

/** /authorize parameters as the edge parsed them (query or form); a repeated one is an array. */
export type AuthorizeParams = Readonly<Record<string, string | string[]>>;

/** Parameters that RFC 8707 lets a client repeat; any other repeated parameter is refused (RFC 6749 §3.1). */
const REPEATABLE = new Set(['resource']);
/** OIDC Core §3.1.2.1 prompt values. */
const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);
/** OIDC Core §5.5: the members a claims request may have. */
const CLAIMS_MEMBERS = new Set(['userinfo', 'id_token']);
// C0 controls and DEL: matching them is the point of this pattern.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
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
  /** OIDC Core §3.1.2.1: echoed in the ID token. */
  nonce: string | null;
  /** OIDC Core §3.1.2.1: space-separated, passed to the host. */
  acrValues: string | null;
  /** OIDC Core §3.1.2.1: not yet verified (the service checks it against the published keys). */
  idTokenHint: string | null;
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
  // RFC 9101 §6.2: request objects are not supported (pushed requests are: RFC 9126, resolved before this).
  if (single(params, 'request') !== undefined) {
    throw new OAuthError('request_not_supported', 'request objects (RFC 9101) are not supported', {
      redirectable: true,
    });
  }
  if (single(params, 'request_uri') !== undefined)
    throw new OAuthError('invalid_request', 'request_uri is not allowed here (RFC 9126 section 2.1)', {
      redirectable: true,
    });
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
    // An OpenID request for identity alone names no API: no default resource, its token is for /userinfo.
    if (requestedResources.length === 0 && onlyIdentityScopes(scopes, scopePolicy)) return;
    resources = resolveResources(requestedResources, client, resourcePolicy);
  });
  const promptValue = single(params, 'prompt');
  const prompts = [...new Set(promptValue === undefined ? [] : promptValue.split(' ').filter(Boolean))];
  if (prompts.some((p) => !PROMPTS.has(p))) {
    throw new OAuthError('invalid_request', 'prompt must be none, login, consent or select_account', {
      redirectable: true,
    });
  }
  // OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error is returned."
  if (prompts.includes('none') && prompts.length > 1)
    throw new OAuthError('invalid_request', 'prompt=none cannot be combined with another value', {
      redirectable: true,
    });
  const maxAgeValue = single(params, 'max_age');
  if (maxAgeValue !== undefined && !/^\d{1,9}$/.test(maxAgeValue))
    throw new OAuthError('invalid_request', 'max_age must be a non-negative integer', { redirectable: true });
  // RFC 9449 §10: dpop_jkt is the RFC 7638 SHA-256 thumbprint of the key the code exchange must prove.
  const dpopJkt = single(params, 'dpop_jkt');
  if (dpopJkt !== undefined && !JKT_FORM.test(dpopJkt))
    throw new OAuthError('invalid_request', 'dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)', {
      redirectable: true,
    });
  const nonce = single(params, 'nonce') ?? null;
  if (nonce !== null && (nonce.length > MAX_NONCE_LENGTH || CONTROL_CHARS.test(nonce)))
    throw new OAuthError(
      'invalid_request',
      `nonce must be at most ${MAX_NONCE_LENGTH} characters, without control characters`,
      {
        redirectable: true,
      },
    );
  checkClaimsRequest(single(params, 'claims'));
  return {
    scopes,
    resources,
    codeChallenge,
    prompt: prompts.length > 0 ? prompts.join(' ') : null,
    // OIDC Registration 1.0 §2 default_max_age: when the request names none.
    maxAge: maxAgeValue === undefined ? (client.default_max_age ?? null) : Number(maxAgeValue),
    loginHint: single(params, 'login_hint') ?? null,
    uiLocales: single(params, 'ui_locales') ?? null,
    dpopJkt: dpopJkt ?? null,
    nonce,
    acrValues: single(params, 'acr_values') ?? null,
    idTokenHint: single(params, 'id_token_hint') ?? null,
  };
}

/**
 * OIDC Core §5.5 claims request: Gatehouse does not support it (claims_parameter_supported is false; the
 * scopes decide what is released, §5.4), and per §5.5 may then ignore one; a value that is not even a
 * claims request (not a JSON object of userinfo / id_token members, each an object of claim name to
 * null or an object) is refused as the malformed request it is.
 */
function checkClaimsRequest(value: string | undefined): void {
  if (value === undefined) return;
  const refuse = (why: string): never => {
    throw new OAuthError('invalid_request', `claims ${why} (OpenID Connect Core §5.5)`, { redirectable: true });
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    refuse('must be a JSON object');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) refuse('must be a JSON object');
  for (const [member, request] of Object.entries(parsed as Record<string, unknown>)) {
    if (!CLAIMS_MEMBERS.has(member)) refuse(`has an unknown member "${member}"; only userinfo and id_token`);
    if (!request || typeof request !== 'object' || Array.isArray(request))
      refuse(`member ${member} must be an object of claim names`);
    for (const [claim, spec] of Object.entries(request as Record<string, unknown>)) {
      if (spec !== null && (typeof spec !== 'object' || Array.isArray(spec)))
        refuse(`${member}.${claim} must be null or an object`);
    }
  }
}
