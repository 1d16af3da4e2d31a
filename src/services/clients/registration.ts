import type { Config } from '../../config/index.js';
import type { Client } from '../../oauth/client.js';
import { ClientMetadataError } from '../../oauth/client-metadata.js';
import { OAuthError } from '../../oauth/errors.js';
import {
  SAME_NAME_FIELDS,
  clientMetadataFromRegistration,
  inRegistrationTerms,
  registrationResponse,
} from '../../oauth/registration-messages.js';
import { generateClientSecret, generateToken, hashSecret, verifySecret } from '../../oauth/secrets.js';
import type { ChangedBy, ClientAdmin } from './admin.js';
import { ClientServiceError } from './errors.js';

/** RFC 6750 §3.1: no error code when the request carried no token at all. */
const CHALLENGE = { 'www-authenticate': 'Bearer' };
const INVALID_TOKEN_CHALLENGE = { 'www-authenticate': 'Bearer error="invalid_token"' };

/**
 * A bearer token as the route found it: the token, `null` when the Authorization header is not a Bearer
 * token, `undefined` when there is no Authorization header.
 */
export type PresentedToken = string | null | undefined;

/** RFC 6750 §3.1 invalid_token, with the challenge that fits what was (not) sent. */
function invalidToken(sent: boolean, description: string): OAuthError {
  return new OAuthError('invalid_token', description, { headers: sent ? INVALID_TOKEN_CHALLENGE : CHALLENGE });
}

/** Fills every field the request left out with null, so RFC 7592 §2.2 replacement defaults it. */
function replacement(metadata: Record<string, unknown>, current: Client): Record<string, unknown> {
  const out: Record<string, unknown> = { ...metadata };
  for (const field of SAME_NAME_FIELDS) out[field] ??= null;
  // Not RFC 7591 metadata but the operator's: a client must not widen its own resources, and keeps the
  // operator's default scopes that are still among its scopes.
  out.resources = [...current.resources];
  const scopes = out.scopes as string[];
  out.default_scopes =
    scopes.length > 0 ? current.default_scopes.filter((s) => scopes.includes(s)) : [...current.default_scopes];
  return out;
}

/**
 * Dynamic client registration (RFC 7591) and its management (RFC 7592). Clients are created through
 * ClientAdmin with source "registration" (never skip_consent); the registration access token and any
 * secret are returned once and stored only as SHA-256 hashes. Refusals of the request's client metadata
 * are ClientMetadataErrors named in the request's own terms (client_name, scope); token refusals are
 * RFC 6750 invalid_token.
 */
/** RFC 7591 / 7592 changes are the client's own (its registration access token), for the audit trail. */
function registrant(address: string | undefined): ChangedBy {
  return { actor: 'client', via: 'registration', ...(address === undefined ? {} : { address }) };
}

export class ClientRegistration {
  private readonly initialTokenHash: string | null;
  private readonly alwaysReturnSecret: boolean;
  /** Also decides whether redirect URIs look native when application_type is not given. */
  private readonly nativeSchemes: ReadonlySet<string>;
  private readonly issuer: string;

  constructor(
    private readonly admin: ClientAdmin,
    config: Pick<Config, 'issuer' | 'registration' | 'policy'>,
  ) {
    const { initialAccessToken, alwaysReturnSecret } = config.registration;
    this.initialTokenHash = initialAccessToken ? hashSecret(initialAccessToken) : null;
    this.alwaysReturnSecret = alwaysReturnSecret;
    this.nativeSchemes = config.policy.nativeSchemes;
    this.issuer = config.issuer;
  }

  /** RFC 7591 §3: with DCR_INITIAL_ACCESS_TOKEN set, only its bearer may register (constant-time compare). */
  checkInitialAccessToken(token: PresentedToken): void {
    if (this.initialTokenHash === null) return;
    if (token === undefined)
      throw invalidToken(false, 'an initial access token is required to register a client (RFC 7591 §3)');
    if (token === null || !verifySecret(token, this.initialTokenHash))
      throw invalidToken(true, 'the initial access token is not valid');
  }

  /**
   * RFC 7592 §2.1: the registration access token must be this client's. A missing client, a client
   * registered another way and a wrong token all answer 401, so client ids cannot be probed.
   */
  async authenticate(clientId: string, token: PresentedToken): Promise<Client> {
    if (token === undefined) throw invalidToken(false, 'a registration access token is required (RFC 7592 §1)');
    const client = clientId.length <= 255 ? await this.admin.find(clientId) : undefined;
    // verifySecret does the same work for a missing hash, so an unknown id costs as much as a known one.
    if (!verifySecret(token ?? '', client?.registration_access_token_hash ?? null) || !client) {
      throw invalidToken(true, 'the registration access token is not valid for this client');
    }
    return client;
  }

  /** RFC 7591 §3.1-3.2.1: registers a client; the registration response, with its one-time credentials. */
  async register(body: Record<string, unknown>, address?: string): Promise<Record<string, unknown>> {
    const { metadata, scopes } = clientMetadataFromRegistration(body, this.nativeSchemes);
    const registrationAccessToken = generateToken();
    let created;
    try {
      created = await this.admin.create(metadata, {
        source: 'registration',
        registrationAccessTokenHash: hashSecret(registrationAccessToken),
        by: registrant(address),
      });
    } catch (err) {
      if (err instanceof ClientMetadataError) throw inRegistrationTerms(err, scopes);
      throw err;
    }
    // DCR_ALWAYS_RETURN_CLIENT_SECRET: a public client also gets a client_secret in this response, for
    // clients that fail without one. It is not stored and authenticates nothing: the client stays
    // token_endpoint_auth_method "none" and must not send it (a public client sending a secret is refused).
    const clientSecret =
      created.secret ??
      (this.alwaysReturnSecret && created.client.token_endpoint_auth_method === 'none' ? generateClientSecret() : null);
    return registrationResponse(created.client, this.issuer, { clientSecret, registrationAccessToken });
  }

  /** RFC 7592 §2.1: the current configuration. The secret is never returned: only its hash is stored. */
  read(client: Client): Record<string, unknown> {
    return registrationResponse(client, this.issuer);
  }

  /** RFC 7592 §2.2: the request replaces the client's metadata; omitted fields take their defaults. */
  async replace(current: Client, body: Record<string, unknown>, address?: string): Promise<Record<string, unknown>> {
    if (body.client_id !== current.client_id) {
      throw new ClientMetadataError(
        'client_id',
        'must be present and equal the client_id of the registration client URI (RFC 7592 §2.2)',
      );
    }
    // RFC 7592 §2.2: a client_secret sent must be the current one. A public client has none stored; the
    // unstored one DCR_ALWAYS_RETURN_CLIENT_SECRET handed out cannot be checked, so it is ignored then.
    if (body.client_secret !== undefined && !(current.secret_hash === null && this.alwaysReturnSecret)) {
      if (typeof body.client_secret !== 'string' || !verifySecret(body.client_secret, current.secret_hash)) {
        throw new ClientMetadataError('client_secret', "does not match the client's current secret (RFC 7592 §2.2)");
      }
    }
    const { metadata, scopes } = clientMetadataFromRegistration(body, this.nativeSchemes);
    let updated;
    try {
      updated = await this.admin.update(current.client_id, replacement(metadata, current), registrant(address));
    } catch (err) {
      if (err instanceof ClientMetadataError) throw inRegistrationTerms(err, scopes);
      if (err instanceof ClientServiceError && err.code === 'not_found')
        throw invalidToken(true, 'the registration access token is not valid for this client');
      throw err;
    }
    // A secret appears only when this change made the client confidential (it is shown this once).
    return registrationResponse(updated.client, this.issuer, { clientSecret: updated.secret });
  }

  /** RFC 7592 §2.3: deregistration; the client's grants and tokens go with it (database cascade). */
  async deregister(client: Client, address?: string): Promise<void> {
    await this.admin.delete(client.client_id, registrant(address));
  }
}
