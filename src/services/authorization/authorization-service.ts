import { SIGN_IN_FIX } from '../setup-report.js';
import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import type { Database } from '../../db/database.js';
import type { AuthorizationRequestRow } from '../../db/tables/authorization-request.table.js';
import type { HostKeys } from '../../handshake/host-keys.js';
import { createLoginRequest, type LoginRequestSigner, sessionSatisfies } from '../../handshake/login-request.js';
import { type LoginResponse, type SignedInAnswer, verifyLoginResponse } from '../../handshake/login-response.js';
import type { Clock } from '../../lib/clock.js';
import { isLoopbackUrl } from '../../lib/loopback.js';
import { bindingCookieName, type CookieJar, hasBinding, issueBinding } from '../../oauth/browser-binding.js';
import type { ResourcePolicy } from '../../oauth/checks/resource.js';
import type { ScopePolicy } from '../../oauth/checks/scope.js';
import { type Client, isOperatorClient } from '../../oauth/client.js';
import type { CsrfTokens } from '../../oauth/csrf.js';
import { OAuthError, rfcDescription } from '../../oauth/errors.js';
import { hasPrompt } from '../../oauth/checks/prompt.js';
import { isOpenIdRequest } from '../../oauth/checks/scope.js';
import { releasableClaims } from '../../oauth/claims.js';
import { generateToken, hashSecret } from '../../oauth/secrets.js';
import type { IdTokenHintVerifier } from '../../oauth/tokens/id-token.js';
import { saveGrantedClaims } from '../../repositories/granted-claims.repository.js';
import { createAuthorizationCode } from '../../repositories/authorization-code.repository.js';
import {
  answerAuthorizationRequest,
  attachSession,
  completeAuthorizationRequest,
  createAuthorizationRequest,
  findLiveAuthorizationRequest,
} from '../../repositories/authorization-request.repository.js';
import { findConsent, saveConsent } from '../../repositories/consent.repository.js';
import { recordSessionClient } from '../../repositories/session.repository.js';
import { type AuditSink, atAddress, noAudit } from '../audit/audit-log.js';
import type { Session, SessionService } from '../sessions/session-service.js';
import { consentView, type Interaction } from './consent-page.js';
import { carrying, type FlowOutcome, type PageOutcome, redirect } from './outcome.js';
import {
  type AuthorizationClientLookup,
  type AuthorizeParams,
  clientAndRedirect,
  single,
  validateRest,
} from './parameters.js';
import { pushAuthorizationRequest, type PushedRequest, usePushedRequest } from './pushed-requests.js';

/** The signed-in user as the flow needs them (a Gatehouse session). */
export type FlowSession = Pick<Session, 'idHash' | 'sid' | 'sub' | 'authTime' | 'acr' | 'amr' | 'claims'>;

/** The clients the flow reads: the registry (its cache, and metadata-document resolution for /authorize). */
export interface FlowClients {
  get(clientId: string): Promise<Client | undefined>;
  resolveForAuthorization(clientId: string): Promise<AuthorizationClientLookup>;
}

/** What the authorization service needs, handed over once by the edge. */
export interface AuthorizationServiceDeps {
  db: Kysely<Database>;
  config: Readonly<Pick<Config, 'issuer' | 'flow' | 'handshake' | 'tokens' | 'par'>>;
  scopePolicy: ScopePolicy;
  resourcePolicy: ResourcePolicy;
  /** RESOURCE_NAMES: display names the consent page shows for resources. */
  resourceNames?: ReadonlyMap<string, string>;
  clients: FlowClients;
  sessions: SessionService;
  /** The active signing key (signs login_request when there is no HANDSHAKE_SECRET). */
  signer: () => LoginRequestSigner;
  /** The host's keys for login_response, or null when sign-in is not configured. */
  hostKeys: HostKeys | null;
  csrf: CsrfTokens;
  /** Verifies an id_token_hint against Gatehouse's published keys (OIDC Core §3.1.2.1). */
  idTokenHint: IdTokenHintVerifier;
  /** Sign-ins for Gatehouse's own account pages, whose answers also arrive at /sign-in/complete. */
  accountSignIn?: {
    owns(requestId: string): boolean;
    answer(answer: LoginResponse, cookies: CookieJar): Promise<FlowOutcome>;
  };
  clock: Clock;
  /** Where sign-ins, consent decisions and codes issued are reported (docs/audit.md). */
  audit?: AuditSink;
}

/** The user's answer on the consent page, as posted. */
export interface ConsentDecision {
  requestId: string;
  decision: 'allow' | 'deny';
  csrf: string;
}

const CSRF_PURPOSE = 'consent';

const DEFAULT_DESCRIPTIONS = {
  access_denied: 'the user or the host app declined the sign-in',
  login_required: 'the user is not signed in at the host app',
} as const;

/** The client's redirect URI with response parameters added, keeping any query it already has (RFC 6749 §3.1.2). */
export function clientRedirect(
  pending: Pick<AuthorizationRequestRow, 'redirect_uri' | 'state'>,
  issuer: string,
  params: Record<string, string>,
): string {
  const url = new URL(pending.redirect_uri);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  if (pending.state !== null) url.searchParams.set('state', pending.state);
  // RFC 9207 §2: iss in every authorization response, success or error.
  url.searchParams.set('iss', issuer);
  return url.toString();
}

/**
 * RFC 9700 §4.11.2: the authorization server must not become a phishing redirector, so it sends the
 * browser on its own only to redirect URIs it trusts. An operator vetted those of admin and CLIENTS_FILE
 * clients; a dynamically registered or metadata-document client is anyone's to create.
 */
export function trustsRedirect(client: Pick<Client, 'source'>): boolean {
  return isOperatorClient(client);
}

/**
 * Whether a public client's redirect gives no assurance of who receives the code: a loopback port or a
 * private-use scheme can be claimed by any app on the device (RFC 8252 §8.6, RFC 6749 §10.2). Loopback
 * is the one definition (src/lib/loopback.ts) the consent page's warning uses too.
 */
export function unverifiableRedirect(client: Pick<Client, 'token_endpoint_auth_method'>, redirectUri: string): boolean {
  if (client.token_endpoint_auth_method !== 'none') return false;
  return isLoopbackUrl(redirectUri) || !/^https?:/i.test(redirectUri);
}

/** Why /authorize wants a pushed request: the server's setting, the client's FAPI 2.0 profile, or its own metadata. */
function pushedRequestsRequired(client: Client, serverWide: boolean): string {
  const why = serverWide
    ? 'this server'
    : client.security_profile === 'fapi2'
      ? "this client's FAPI 2.0 profile (FAPI 2.0 section 5.3.2.2)"
      : 'this client (require_pushed_authorization_requests)';
  return `${why} requires pushed authorization requests: push the parameters to the pushed authorization request endpoint and send only client_id and request_uri (RFC 9126 section 6)`;
}

function alreadyAnswered(): OAuthError {
  return new OAuthError(
    'invalid_request',
    'this sign-in answer has already been used; start again from the application',
  );
}

/**
 * The one owner of a pending authorization request's lifecycle: create it (validate, store, bind to the
 * browser), attach an existing session or send the browser to the host's sign-in, accept the host's
 * answer (a new session and the request marked answered, in one transaction), decide whether consent is
 * needed, record the decision, complete the request and issue the code. Each step takes plain inputs
 * (parameters, the browser's cookies) and returns an outcome for the edge to send; errors that end on
 * Gatehouse's own page are thrown as OAuthError.
 */
export class AuthorizationService {
  readonly #deps: AuthorizationServiceDeps;
  readonly #bindingCookie: string;

  constructor(deps: AuthorizationServiceDeps) {
    this.#deps = deps;
    this.#bindingCookie = bindingCookieName(deps.config);
  }

  /** The audit sink for one request, stamped with its address. */
  #audit(address: string | undefined): AuditSink {
    return atAddress(this.#deps.audit ?? noAudit, address);
  }

  get #issuer(): string {
    return this.#deps.config.issuer;
  }

  /**
   * GET/POST /authorize: validates the request (RFC 6749 §4.1.1), stores it bound to this browser, then
   * continues with the browser's session when it is good enough, or sends the browser to the host.
   */
  async authorize(requested: AuthorizeParams, cookies: CookieJar, address?: string): Promise<FlowOutcome> {
    const { config, clients, sessions } = this.#deps;
    // RFC 9126 §4: with request_uri, the pushed parameters alone make the request.
    const requestUri = single(requested, 'request_uri');
    const pushed = requestUri !== undefined;
    const params = pushed ? await usePushedRequest(this.#deps, requested, requestUri) : requested;
    const { client, redirectUri, given } = await clientAndRedirect((id) => clients.resolveForAuthorization(id), params);
    let state: string | null = null;
    let rest: ReturnType<typeof validateRest>;
    let hintSub: string | null;
    try {
      state = single(params, 'state') ?? null;
      // RFC 9126 §6 (PAR_REQUIRED or the client's require_pushed_authorization_requests; FAPI 2.0 §5.3.2.2).
      if (!pushed && (config.par.required || client.require_pushed_authorization_requests))
        throw new OAuthError('invalid_request', pushedRequestsRequired(client, config.par.required), {
          redirectable: true,
        });
      rest = validateRest(params, client, this.#deps.scopePolicy, this.#deps.resourcePolicy);
      hintSub = rest.idTokenHint === null ? null : await this.#verifyHint(rest.idTokenHint, client.client_id);
    } catch (err) {
      if (!(err instanceof OAuthError) || !err.redirectable) throw err;
      if (!trustsRedirect(client)) throw new OAuthError(err.error, err.description, { status: err.status });
      return redirect(
        clientRedirect({ redirect_uri: redirectUri, state }, this.#issuer, {
          error: err.error,
          error_description: rfcDescription(err.description),
        }),
      );
    }

    const now = this.#deps.clock();
    const binding = issueBinding(cookies[this.#bindingCookie], config);
    const pending = await createAuthorizationRequest(this.#deps.db, {
      id: generateToken(),
      client_id: client.client_id,
      redirect_uri: redirectUri,
      redirect_uri_given: given,
      state,
      scopes: rest.scopes,
      resources: rest.resources,
      code_challenge: rest.codeChallenge,
      prompt: rest.prompt,
      max_age: rest.maxAge,
      login_hint: rest.loginHint,
      ui_locales: rest.uiLocales,
      dpop_jkt: rest.dpopJkt,
      nonce: rest.nonce,
      acr_values: rest.acrValues,
      id_token_hint_sub: hintSub,
      binding_hash: binding.hash,
      session_hash: null,
      created_at: now,
      expires_at: new Date(now.getTime() + config.flow.requestTtl * 1000),
      answered_at: null,
      completed_at: null,
    });

    return carrying([binding.cookie], async () => {
      const session = await sessions.current(cookies[sessions.cookieName]);
      if (session && this.#sessionServes(session, pending, now)) {
        await attachSession(this.#deps.db, pending.id, session.idHash);
        return this.#continue({ ...pending, session_hash: session.idHash }, session, this.#audit(address));
      }
      // OIDC Core §3.1.2.1: prompt=none never shows a page; without a usable session the answer is login_required.
      if (hasPrompt(pending.prompt, 'none'))
        return this.#finishWithError(
          pending,
          new OAuthError(
            'login_required',
            session ? 'the signed-in user does not meet this request' : 'the user is not signed in',
          ),
        );
      if (!config.handshake.signInUrl)
        // The operator's first run (issue 13): the page says what to set, as the start-up log does.
        throw new OAuthError('temporarily_unavailable', `sign-in is not configured: ${SIGN_IN_FIX}`, { status: 503 });
      // RFC 9700 §4.12: 303; no-store because the URL carries a one-off signed request.
      return redirect(
        await createLoginRequest(
          { handshake: config.handshake, issuer: this.#issuer, signer: this.#deps.signer, clock: this.#deps.clock },
          pending,
          client,
        ),
      );
    });
  }

  /** POST /par (RFC 9126 §2): validates and stores a pushed request of the authenticated client. */
  push(params: AuthorizeParams, client: Client): Promise<PushedRequest> {
    return pushAuthorizationRequest(this.#deps, params, client);
  }

  /**
   * /sign-in/complete: the host's signed login_response (docs/handshake.md). Until the answer is verified
   * and tied to this browser's pending request, every failure is thrown (an error page, never a redirect:
   * nothing yet says which client it could go to). A signed-in answer becomes a session (replacing the
   * browser's previous one) and the request is marked answered, in one transaction.
   */
  async answerSignIn(loginResponse: string, cookies: CookieJar, address?: string): Promise<FlowOutcome> {
    const { config, sessions, hostKeys } = this.#deps;
    if (!hostKeys) throw new OAuthError('invalid_request', 'sign-in is not configured on this server');
    const now = this.#deps.clock();
    const answer = await verifyLoginResponse(loginResponse, hostKeys, {
      issuer: this.#issuer,
      hostId: config.handshake.hostId,
      clockSkew: config.tokens.clockSkew,
      maxAge: config.handshake.responseMaxAge,
      now,
    });
    // An answer for an account page (docs/connected-apps.md) names a signed state, not a pending request.
    if (this.#deps.accountSignIn?.owns(answer.request)) return this.#deps.accountSignIn.answer(answer, cookies);
    const pending = await findLiveAuthorizationRequest(this.#deps.db, answer.request, now);
    if (!pending)
      throw new OAuthError(
        'invalid_request',
        'the sign-in request this answer names is unknown, has expired or is already finished; start again from the application',
      );
    // docs/handshake.md step 3: only the browser that started the request may bring its answer back.
    if (!hasBinding(cookies[this.#bindingCookie], pending.binding_hash)) {
      throw new OAuthError(
        'invalid_request',
        'this sign-in was started in another browser (or its cookie has expired); start again from the application',
      );
    }
    if (pending.answered_at !== null) throw alreadyAnswered();
    if (answer.kind === 'error') {
      return this.#finishWithError(
        pending,
        new OAuthError(answer.error, answer.description ?? DEFAULT_DESCRIPTIONS[answer.error]),
      );
    }
    if (!this.#freshEnough(answer, pending, now)) {
      const why = hasPrompt(pending.prompt, 'login') ? 'prompt=login' : `max_age=${pending.max_age}`;
      return this.#finishWithError(
        pending,
        new OAuthError('login_required', `the host app did not re-authenticate the user as ${why} requires`),
      );
    }
    const previous = await sessions.current(cookies[sessions.cookieName]);
    const created = await sessions.createWith(
      { sub: answer.sub, authTime: answer.authTime, amr: answer.amr, acr: answer.acr, claims: answer.claims },
      (trx, session) => answerAuthorizationRequest(trx, pending.id, session.idHash, now),
    );
    // Lost a race with a concurrent copy of the same answer: nothing was stored, no cookie is set.
    if (!created) throw alreadyAnswered();
    const audit = this.#audit(address);
    audit.record({
      type: 'sign_in.completed',
      actor: 'user',
      subject: answer.sub,
      clientId: pending.client_id,
      details: {
        sid: created.session.sid,
        auth_time: answer.authTime.toISOString(),
        acr: answer.acr ?? null,
        amr: answer.amr,
      },
    });
    return carrying([created.cookie], async () => {
      // The new session replaces the browser's old one (same cookie name); the old row must not outlive it.
      if (previous && previous.idHash !== created.session.idHash) await sessions.revoke(previous.idHash);
      return this.#continue(created.result, created.session, audit);
    });
  }

  /** GET /consent: the page asking the signed-in user whether this client may have what it asks for. */
  async showConsent(requestId: string, cookies: CookieJar): Promise<PageOutcome> {
    const interaction = await this.#interaction(requestId, cookies);
    const token = this.#deps.csrf.issue(CSRF_PURPOSE, interaction.session.idHash, interaction.pending.id);
    return {
      kind: 'page',
      view: 'consent',
      data: consentView(
        interaction,
        this.#deps.scopePolicy.catalogue,
        token,
        this.#deps.scopePolicy.identity,
        this.#deps.resourceNames,
      ),
      // Allow and Deny both end in a 303 to the client, which the browser checks against form-action.
      formRedirects: [interaction.pending.redirect_uri],
      cookies: [],
      // The client's ui_locales, kept on the pending request since /authorize, chooses the page's language.
      uiLocales: interaction.pending.ui_locales,
    };
  }

  /** POST /consent: records the user's decision and answers the client (a code, or access_denied). */
  async decideConsent(decision: ConsentDecision, cookies: CookieJar, address?: string): Promise<FlowOutcome> {
    const { pending, session } = await this.#interaction(decision.requestId, cookies);
    if (!this.#deps.csrf.verify(decision.csrf, CSRF_PURPOSE, session.idHash, pending.id)) {
      throw new OAuthError(
        'invalid_request',
        'the consent form was not valid for this sign-in; return to the application and start again',
        { status: 403 },
      );
    }
    const audit = this.#audit(address);
    if (decision.decision === 'deny') {
      // The consent page showed where the browser goes next: the user chose it, even for an unvetted client.
      return this.#finishWithError(pending, new OAuthError('access_denied', 'the user denied the request'), {
        userSawDestination: true,
        // Once the request is completed by this decision (not by a double submit's twin).
        completed: () =>
          audit.record({
            type: 'consent.denied',
            actor: 'user',
            subject: session.sub,
            clientId: pending.client_id,
            details: { scopes: pending.scopes, resources: pending.resources },
          }),
      });
    }
    // Straight to the code: #continue would send prompt=consent back to this page forever.
    return this.#issueCode(pending, session, audit, { rememberConsent: true });
  }

  /**
   * Whether the browser's existing session may answer the request without the host (OIDC Core
   * §3.1.2.1): not when prompt=login asks for a new sign-in (a session that existed before this request
   * never satisfies it) or select_account for the host's account chooser; not when max_age finds it too
   * old; not when acr_values names levels and the session's acr is none of them (the host may step up);
   * not when a verified id_token_hint names another user.
   */
  #sessionServes(session: FlowSession, pending: AuthorizationRequestRow, now: Date): boolean {
    if (hasPrompt(pending.prompt, 'login') || hasPrompt(pending.prompt, 'select_account')) return false;
    if (!sessionSatisfies(session, pending, now)) return false;
    if (pending.acr_values !== null && !pending.acr_values.split(' ').includes(session.acr ?? '')) return false;
    return pending.id_token_hint_sub === null || pending.id_token_hint_sub === session.sub;
  }

  /** The sub of an id_token_hint, or a redirectable invalid_request naming why it is refused. */
  async #verifyHint(hint: string, clientId: string): Promise<string> {
    try {
      return await this.#deps.idTokenHint(hint, clientId);
    } catch (err) {
      if (err instanceof OAuthError) throw new OAuthError(err.error, err.description, { redirectable: true });
      throw err;
    }
  }

  /** OpenID Connect Core §3.1.2.1: prompt=login and max_age need a fresh sign-in; the host's clock may run behind. */
  #freshEnough(answer: SignedInAnswer, pending: AuthorizationRequestRow, now: Date): boolean {
    return sessionSatisfies({ authTime: answer.authTime }, pending, now, this.#deps.config.tokens.clockSkew);
  }

  /** Loads the pending request and checks it belongs to this browser (binding cookie) and this signed-in session. */
  async #interaction(requestId: string, cookies: CookieJar): Promise<Interaction> {
    const { db, sessions, clients } = this.#deps;
    const pending = await findLiveAuthorizationRequest(db, requestId, this.#deps.clock());
    if (!pending) {
      throw new OAuthError(
        'invalid_request',
        'this authorization request is unknown, has expired or was already completed; return to the application and start again',
      );
    }
    // The binding cookie first: another browser holding a leaked link learns nothing more.
    if (!hasBinding(cookies[this.#bindingCookie], pending.binding_hash)) {
      throw new OAuthError(
        'invalid_request',
        'this authorization request was started in another browser, or its cookie has expired; return to the application and start again',
        { status: 403 },
      );
    }
    const session = await sessions.current(cookies[sessions.cookieName]);
    // Both sides are SHA-256 hashes of 256-bit session ids: timing while comparing them reveals nothing usable.
    if (!session || pending.session_hash === null || session.idHash !== pending.session_hash) {
      throw new OAuthError(
        'invalid_request',
        'you are not signed in for this authorization request; return to the application and start again',
        { status: 403 },
      );
    }
    const client = await clients.get(pending.client_id);
    if (!client || client.disabled_at)
      throw new OAuthError('invalid_request', 'the application is unknown or has been disabled');
    return { pending, session, client };
  }

  /**
   * Continues a pending request once a user is signed in: to the consent page when needed, otherwise
   * straight to the client with a code.
   */
  async #continue(pending: AuthorizationRequestRow, session: FlowSession, audit: AuditSink): Promise<FlowOutcome> {
    const client = await this.#deps.clients.get(pending.client_id);
    if (!client || client.disabled_at) throw new OAuthError('invalid_request', 'the client is unknown or disabled');
    if (await this.#needsConsent(client, pending, session.sub)) {
      // OIDC Core §3.1.2.1: prompt=none never shows a page.
      if (hasPrompt(pending.prompt, 'none'))
        return this.#finishWithError(
          pending,
          new OAuthError('consent_required', 'the user has not consented to this client'),
        );
      return redirect(`${this.#issuer}/consent?request=${encodeURIComponent(pending.id)}`);
    }
    return this.#issueCode(pending, session, audit);
  }

  /** Whether this request must show the consent page. */
  async #needsConsent(client: Client, pending: AuthorizationRequestRow, sub: string): Promise<boolean> {
    // OIDC Core §3.1.2.1: prompt=consent always asks, even a first-party client.
    if (hasPrompt(pending.prompt, 'consent')) return true;
    // Only an operator's client may skip consent: a self-registered one never does, whatever its flag says.
    if (client.skip_consent && isOperatorClient(client)) return false;
    // Remembered consent is not trusted when another local app could be posing as this client.
    if (unverifiableRedirect(client, pending.redirect_uri)) return true;
    return !(await this.#consentCovers(pending, sub));
  }

  /** Whether a stored consent already covers the request (scopes and resources). */
  async #consentCovers(pending: AuthorizationRequestRow, sub: string): Promise<boolean> {
    const consent = await findConsent(this.#deps.db, sub, pending.client_id);
    if (!consent) return false;
    const scopes = new Set(consent.scopes);
    const resources = new Set(consent.resources);
    return pending.scopes.every((s) => scopes.has(s)) && pending.resources.every((r) => resources.has(r));
  }

  /** Marks the request completed exactly once; a second completion (a double submit, a replay) is refused. */
  async #complete(pending: AuthorizationRequestRow, now: Date): Promise<void> {
    const done = await completeAuthorizationRequest(this.#deps.db, pending.id, now);
    if (!done)
      throw new OAuthError('invalid_request', 'this authorization request has already been completed or has expired');
  }

  /**
   * Ends a pending request with an error (RFC 6749 §4.1.2.1). Completing the row first means an error is
   * sent at most once. The browser is redirected to the client's (already validated) redirect URI when the
   * client still exists and is enabled and its redirect is trusted, or the user has just seen where it
   * goes (`userSawDestination`: the consent page's Deny); otherwise the error is thrown for Gatehouse's
   * own page, which links nowhere (RFC 9700 §4.11.2).
   */
  async #finishWithError(
    pending: AuthorizationRequestRow,
    error: OAuthError,
    options: { userSawDestination?: boolean; completed?: () => void } = {},
  ): Promise<FlowOutcome> {
    await this.#complete(pending, this.#deps.clock());
    options.completed?.();
    const client = await this.#deps.clients.get(pending.client_id);
    if (!client || client.disabled_at) throw new OAuthError('invalid_request', 'the client is unknown or disabled');
    const location = clientRedirect(pending, this.#issuer, {
      error: error.error,
      error_description: rfcDescription(error.description),
    });
    if (trustsRedirect(client) || options.userSawDestination) return redirect(location);
    throw new OAuthError(error.error, error.description, { status: error.status });
  }

  /** Completes the request, remembers the consent that completed it (if asked), and issues the code. */
  async #issueCode(
    pending: AuthorizationRequestRow,
    session: FlowSession,
    audit: AuditSink,
    options: { rememberConsent?: boolean } = {},
  ): Promise<FlowOutcome> {
    const { db, config } = this.#deps;
    const now = this.#deps.clock();
    await this.#complete(pending, now);
    // Only the decision that completed the request is remembered: an Allow that lost a race to a Deny
    // (two tabs, a double submit) stores nothing.
    if (options.rememberConsent) {
      await saveConsent(db, session.sub, pending.client_id, pending.scopes, pending.resources, now);
      audit.record({
        type: 'consent.granted',
        actor: 'user',
        subject: session.sub,
        clientId: pending.client_id,
        details: { scopes: pending.scopes, resources: pending.resources },
      });
    }
    // The host's claims go with the grant, replaced at every sign-in, so /userinfo answers for a refresh
    // chain after the browser session is gone (OIDC Core §5.3); only claims some identity scope releases.
    if (isOpenIdRequest(pending.scopes)) {
      const claims = releasableClaims(session.claims, this.#deps.scopePolicy.identity);
      await saveGrantedClaims(db, session.sub, pending.client_id, claims, now);
    }
    const code = generateToken();
    await createAuthorizationCode(db, {
      code_hash: hashSecret(code),
      client_id: pending.client_id,
      redirect_uri: pending.redirect_uri,
      redirect_uri_given: pending.redirect_uri_given,
      code_challenge: pending.code_challenge,
      scopes: pending.scopes,
      resources: pending.resources,
      sub: session.sub,
      auth_time: session.authTime,
      sid: session.sid,
      nonce: pending.nonce,
      acr: session.acr,
      amr: session.amr,
      expires_at: new Date(now.getTime() + config.flow.codeTtl * 1000),
      consumed_at: null,
      family_id: null,
      dpop_jkt: pending.dpop_jkt,
    });
    // OpenID Connect Back-Channel Logout §2.3: the OP remembers which RPs a session signed in to.
    await recordSessionClient(db, session.sid, pending.client_id, session.sub);
    audit.record({
      type: 'code.issued',
      actor: 'user',
      subject: session.sub,
      clientId: pending.client_id,
      details: {
        scopes: pending.scopes,
        resources: pending.resources,
        redirect_uri: pending.redirect_uri,
        ...(pending.dpop_jkt === null ? {} : { jkt: pending.dpop_jkt }),
      },
    });
    return redirect(clientRedirect(pending, this.#issuer, { code }));
  }
}
