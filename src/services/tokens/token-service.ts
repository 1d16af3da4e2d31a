import type { Db } from '../../db/database.js';
import type { JwkSet } from '../../keys/signing-key.js';
import type { Clock } from '../../lib/clock.js';
import type { Client } from '../../oauth/client.js';
import {
  checkDpopProof,
  type DpopNonceSource,
  type DpopProof,
  invalidProof,
  proofReplayKey,
  singleDpopHeader,
} from '../../oauth/dpop.js';
import { OAuthError } from '../../oauth/errors.js';
import {
  type GrantClient,
  type GrantContext,
  ISSUED_TO,
  type TokenParams,
  type TokenResponse,
} from '../../oauth/grants/grant.js';
import { recordDpopProof } from '../../repositories/dpop-proof.repository.js';
import { type AuditEvent, type AuditSink, atAddress, noAudit } from '../audit/audit-log.js';
import { tokenGrants } from './index.js';
import { type Introspector, introspectionService } from './introspection.js';
import { revokeToken } from './revocation.js';
import { type Userinfo, userinfoService } from './userinfo.js';
import { userinfoEndpoint } from '../../oauth/tokens/id-token.js';

/** What the token endpoints need, built once at start. */
export interface TokenServiceDeps extends GrantContext {
  db: () => Db;
  /** CLOCK_SKEW_SECONDS, for introspection's `exp` check. */
  clockSkew: number;
  /** The published JWK Set, for introspecting access tokens. */
  jwks: () => JwkSet;
  clients: { get(clientId: string): Promise<Pick<Client, 'disabled_at'> | undefined> };
  clock: Clock;
  /** Server-provided DPoP nonces (RFC 9449 §8), shared by every replica. */
  dpopNonces: DpopNonceSource;
  /** Where token issuance and detected replays are reported (docs/audit.md). */
  audit?: AuditSink;
  /** AUDIT_TOKEN_EVENTS: whether each token response is recorded as `token.issued`. */
  auditTokens?: boolean;
}

/**
 * The `token.issued` audit event: the grant, the user (the access token's `sub`; none for a client acting
 * for itself), scopes, audience and the DPoP key thumbprint. Never a token: the subject and audience come
 * with the response as they were signed (ISSUED_TO), and neither is a secret.
 */
function recordIssued(
  audit: AuditSink,
  grantType: string,
  clientId: string,
  response: TokenResponse,
  proof: DpopProof | undefined,
  onLine: ((audit: Record<string, unknown>) => void) | undefined,
): void {
  const issuedTo = response[ISSUED_TO];
  const event: AuditEvent = {
    type: 'token.issued',
    actor: 'client',
    subject: grantType === 'client_credentials' ? null : issuedTo.sub,
    clientId,
    details: {
      grant_type: grantType,
      scopes: response.scope === undefined ? [] : response.scope.split(' '),
      audience: [...issuedTo.aud],
      // Names the log redaction leaves alone (it hides any field named like a token).
      refresh: response.refresh_token !== undefined,
      openid: response.id_token !== undefined,
      ...(proof ? { jkt: proof.jkt } : {}),
    },
  };
  // One log line per token request: the event rides on the request's line when the caller writes one.
  if (onLine && audit.recordForLine) {
    const line = audit.recordForLine(event);
    if (line !== undefined) onLine(line);
  } else audit.record(event);
}

/**
 * The token endpoints' application layer: `/token` (grant dispatch), `/revoke` and `/introspect`. The
 * routes authenticate the client and hand over plain parameters; nothing here knows HTTP.
 */
export class TokenService {
  readonly #deps: TokenServiceDeps;
  readonly #introspect: Introspector;
  readonly #userinfo: Userinfo;

  constructor(deps: TokenServiceDeps) {
    this.#deps = deps;
    this.#introspect = introspectionService({
      issuer: deps.config.issuer,
      clockSkew: deps.clockSkew,
      jwks: deps.jwks,
      clients: deps.clients,
      db: deps.db,
      clock: deps.clock,
    });
    this.#userinfo = userinfoService({
      issuer: deps.config.issuer,
      clockSkew: deps.clockSkew,
      jwks: deps.jwks,
      clients: deps.clients,
      identity: deps.scopePolicy.identity,
      db: deps.db,
      clock: deps.clock,
    });
  }

  /** OIDC Core §5.3: the consented claims an access token releases, or why it is refused (RFC 6750 §3.1). */
  userinfo(accessToken: string): ReturnType<Userinfo> {
    return this.#userinfo(accessToken);
  }

  /**
   * /userinfo under the DPoP scheme (RFC 9449 §7.1): the proof is checked against this request (method,
   * the published UserInfo URL, `ath` of the token), accepted once across replicas, and the token must be
   * bound to its key. Throws `invalid_dpop_proof` / `use_dpop_nonce` for a bad proof.
   */
  async userinfoWithProof(
    accessToken: string,
    method: string,
    header: string | string[] | undefined,
  ): ReturnType<Userinfo> {
    const value = singleDpopHeader(header);
    if (value === undefined) throw invalidProof('the DPoP scheme needs a DPoP proof header');
    const { config } = this.#deps;
    const proof = await checkDpopProof(value, {
      method,
      url: userinfoEndpoint(config.issuer),
      now: Math.floor(this.#deps.clock().getTime() / 1000),
      maxAge: config.dpop.proofMaxAge,
      skew: this.#deps.clockSkew,
      nonces: this.#deps.dpopNonces,
      requireNonce: config.dpop.nonceRequired,
      accessToken,
    });
    await this.#acceptOnce(proof);
    return this.#userinfo(accessToken, proof.jkt);
  }

  /** Whether `grant_type` names a grant Gatehouse serves; checked before the client is authenticated. */
  supports(grantType: string): boolean {
    return tokenGrants.has(grantType);
  }

  /**
   * RFC 9449 §4.3: the token request's DPoP header, checked against the published token endpoint URL
   * (never the Host or X-Forwarded-* headers, so no proxy setting is involved); undefined when none came.
   * Pure: whether the proof was used before is decided by `issue`, once the client is authenticated.
   */
  async checkDpopProof(header: string | string[] | undefined): Promise<DpopProof | undefined> {
    const value = singleDpopHeader(header);
    if (value === undefined) return undefined;
    const { config } = this.#deps;
    return checkDpopProof(value, {
      method: 'POST',
      url: `${config.issuer}/token`,
      now: Math.floor(this.#deps.clock().getTime() / 1000),
      maxAge: config.dpop.proofMaxAge,
      skew: this.#deps.clockSkew,
      nonces: this.#deps.dpopNonces,
      requireNonce: config.dpop.nonceRequired,
    });
  }

  /** The DPoP nonce a successful response hands out (RFC 9449 §8.2), when nonces are required. */
  dpopNonce(): string | undefined {
    if (!this.#deps.config.dpop.nonceRequired) return undefined;
    return this.#deps.dpopNonces.current(Math.floor(this.#deps.clock().getTime() / 1000));
  }

  /**
   * RFC 6749 §5: runs the grant for an authenticated client, with the request's DPoP proof if one came;
   * `address` (the requester's IP) goes into the audit events the request causes. With `onLogLine`, the
   * `token.issued` event's log payload is handed to it (for the request's own log line) instead of
   * being logged as a line of its own; its row is stored either way.
   */
  async issue(
    params: TokenParams,
    client: GrantClient,
    proof?: DpopProof,
    address?: string,
    onLogLine?: (audit: Record<string, unknown>) => void,
  ): Promise<TokenResponse> {
    const grant = tokenGrants.get(params.grant_type);
    if (!grant) throw new OAuthError('unsupported_grant_type', `unsupported grant_type: ${params.grant_type}`);
    // RFC 6749 §5.2 unauthorized_client: the client is not allowed this grant type.
    if (!client.grant_types.includes(grant.grantType)) {
      throw new OAuthError('unauthorized_client', `this client may not use ${grant.grantType}`);
    }
    if (proof) {
      await this.#acceptOnce(proof);
    } else if (this.#deps.config.dpop.required || client.dpop_bound_access_tokens) {
      // RFC 9449 §5.2 (dpop_bound_access_tokens) and DPOP_REQUIRED: a request without the DPoP header is
      // missing a required part (RFC 6749 §5.2 invalid_request); an invalid proof is invalid_dpop_proof.
      throw new OAuthError('invalid_request', 'a DPoP proof (RFC 9449) is required for this client');
    }
    const audit = atAddress(this.#deps.audit ?? noAudit, address);
    const response = await grant.handle(params, client, this.#deps, proof, audit);
    if (this.#deps.auditTokens) recordIssued(audit, grant.grantType, client.client_id, response, proof, onLogLine);
    return response;
  }

  /** RFC 9449 §11.1: a proof is accepted once, across every replica (the unique key in Postgres decides). */
  async #acceptOnce(proof: DpopProof): Promise<void> {
    const { config } = this.#deps;
    // Remembered until its iat leaves the window: by then the iat check refuses it anyway.
    const expiresAt = new Date((proof.iat + config.dpop.proofMaxAge + 2 * this.#deps.clockSkew) * 1000);
    if (!(await recordDpopProof(this.#deps.db(), proofReplayKey(proof), expiresAt)))
      throw new OAuthError(
        'invalid_dpop_proof',
        'the DPoP proof was already used; create a new proof for each request',
      );
  }

  /** RFC 7009 §2.1: revokes the caller's refresh token's chain; silent about anything else. */
  async revoke(token: string, clientId: string): Promise<void> {
    await revokeToken(this.#deps.db(), token, clientId, this.#deps.clock);
  }

  /** RFC 7662 §2: what the authenticated caller may learn about a token. */
  introspect(...args: Parameters<Introspector>): ReturnType<Introspector> {
    return this.#introspect(...args);
  }
}
