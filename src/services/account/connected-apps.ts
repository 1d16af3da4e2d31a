import type { Kysely } from 'kysely';
import type { AuditSink } from '../audit/audit-log.js';
import type { Config } from '../../config/index.js';
import type { Database } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { FALLBACK_LOCALE, type Locale, SUPPORTED_LOCALES } from '../../lib/i18n.js';
import { OPENID_SCOPE, STANDARD_IDENTITY_SCOPES } from '../../lib/oidc-claims.js';
import type { CookieJar } from '../../oauth/browser-binding.js';
import type { ScopePolicy } from '../../oauth/checks/scope.js';
import type { Client } from '../../oauth/client.js';
import type { CsrfTokens } from '../../oauth/csrf.js';
import { OAuthError } from '../../oauth/errors.js';
import {
  grantedClaimsByClient,
  lastUsedByClient,
  queueClientLogouts,
} from '../../repositories/connected-app.repository.js';
import { type ClientGrant, listUserGrants, revokeUserGrants } from '../../repositories/user-grant.repository.js';
import { type FlowOutcome, type PageOutcome, redirect } from '../authorization/outcome.js';
import type { Session, SessionService } from '../sessions/session-service.js';
import { ACCOUNT_DESTINATIONS, type AccountSignIn } from './account-sign-in.js';

/** What the connected-apps page needs. */
export interface ConnectedAppsDeps {
  db: Kysely<Database>;
  config: Readonly<Pick<Config, 'issuer'>>;
  scopePolicy: ScopePolicy;
  /** RESOURCE_NAMES: display names of resources, by canonical URI (shown with the URI, as on the consent page). */
  resourceNames?: ReadonlyMap<string, string>;
  /** The client registry's read path (its cache; never a client-id document fetch). */
  clients: { get(clientId: string): Promise<Client | undefined> };
  sessions: SessionService;
  /** The forms' CSRF tokens (HMAC, timing-safe verify). */
  csrf: CsrfTokens;
  accountSignIn: Pick<AccountSignIn, 'start'>;
  clock: Clock;
  /** Where the `consent.revoked` audit event goes (its log line and its audit_events row). */
  audit: AuditSink;
}

/** A moment as the page shows it: machine-readable for <time>, and in words. */
export interface ShownTime {
  iso: string;
  text: string;
}

/** One connected app as connected-apps.eta renders it; every string is escaped by the template engine. */
export interface ConnectedAppView {
  clientId: string;
  name: string;
  /** The monogram shown when there is no logo. */
  initial: string;
  logo: string | null;
  uri: string | null;
  /** For a client known only by its client-id document: the host of its URL, its only verified identity. */
  identity: string | null;
  /** What it can do: catalogue scopes in the consent page's words. */
  scopes: Array<{ name: string; description: string }>;
  /**
   * The personal data it sees: identity scopes in the consent page's words, with the values kept for it. A
   * standard scope (`standard`) is described in the page's language (the `identityScope.*` messages), an
   * operator's CLAIMS scope in its configured words.
   */
  personalData: Array<{ name: string; description: string; standard: boolean; values: string[] }>;
  /** The services (RFC 8707 resources) it may call, with their RESOURCE_NAMES display name or null. */
  resources: Array<{ uri: string; name: string | null }>;
  since: ShownTime | null;
  lastUsed: ShownTime | null;
  /** An operator disabled the client: it can do nothing now, but its grant is still there to revoke. */
  disabled: boolean;
}

/** What the page renders (but the forms' action, which the edge adds). */
export interface ConnectedAppsView {
  user: { name: string | null; email: string | null; sub: string };
  apps: ConnectedAppView[];
  csrf: string;
  /** The app just revoked (it no longer appears in `apps`), to say so. */
  revoked: { name: string } | null;
}

/** The user's revocation of one app: the browser's next stop, and how many back-channel logout tokens were queued. */
export interface RevokeOutcome {
  outcome: FlowOutcome;
  logoutTokens: number;
}

const CSRF_PURPOSE = 'connected-apps';
/** The page's token is per session: it names no request, so this part of the HMAC input is fixed. */
const CSRF_SCOPE = '';

/**
 * The form of a date on the page in each of its languages, in UTC so every replica and test writes the same
 * words. English is written the British way (`5 Mar 2025, 10:07 UTC`): day first, no ambiguity.
 */
const DATE_FORMATS: ReadonlyMap<Locale, Intl.DateTimeFormat> = new Map(
  SUPPORTED_LOCALES.map((locale) => [
    locale,
    new Intl.DateTimeFormat(locale === 'en' ? 'en-GB' : locale, {
      dateStyle: 'medium',
      timeStyle: 'short',
      timeZone: 'UTC',
    }),
  ]),
);

function shown(at: Date | null, locale: Locale): ShownTime | null {
  const format = DATE_FORMATS.get(locale) ?? DATE_FORMATS.get(FALLBACK_LOCALE)!;
  return at === null ? null : { iso: at.toISOString(), text: `${format.format(at)} UTC` };
}

function httpsOrNull(value: string | null): string | null {
  if (value === null) return null;
  try {
    return new URL(value).protocol === 'https:' ? value : null;
  } catch {
    return null;
  }
}

function claimText(claims: Record<string, unknown>, name: string): string | null {
  const value = claims[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, 200) : null;
}

/** Every value of `lists` once, in first-seen order. */
function union(lists: ReadonlyArray<readonly string[]>): string[] {
  return [...new Set(lists.flat())];
}

/**
 * The connected-apps page (docs/connected-apps.md): a signed-in user sees every app holding a grant of theirs
 * (remembered consent or a live refresh-token chain) and revokes it. Without a session the browser goes
 * through the host's sign-in first (AccountSignIn) and comes back here.
 */
export class ConnectedApps {
  readonly #deps: ConnectedAppsDeps;

  constructor(deps: ConnectedAppsDeps) {
    this.#deps = deps;
  }

  /**
   * GET /account/apps: the page, or the host's sign-in when the browser has no session. `locale`: the page's
   * language (the edge negotiates it from Accept-Language); its dates are written in it, and the page is
   * rendered in it.
   */
  async show(cookies: CookieJar, options: { revoked?: string; locale?: Locale } = {}): Promise<FlowOutcome> {
    const { sessions, csrf } = this.#deps;
    const session = await sessions.current(cookies[sessions.cookieName]);
    if (!session) return this.#deps.accountSignIn.start('apps', cookies);
    const locale = options.locale ?? FALLBACK_LOCALE;
    const apps = await this.list(session.sub, locale);
    let revoked: ConnectedAppsView['revoked'] = null;
    // Said only when it is true: the app exists and no longer appears among the user's apps.
    if (options.revoked !== undefined && !apps.some((app) => app.clientId === options.revoked)) {
      const client = await this.#deps.clients.get(options.revoked);
      if (client) revoked = { name: client.name };
    }
    const data: ConnectedAppsView = {
      user: { name: claimText(session.claims, 'name'), email: claimText(session.claims, 'email'), sub: session.sub },
      apps,
      csrf: csrf.issue(CSRF_PURPOSE, session.idHash, CSRF_SCOPE),
      revoked,
    };
    const page: PageOutcome = {
      kind: 'page',
      view: 'connected-apps',
      data: { ...data },
      formRedirects: [],
      cookies: [],
      // The language the dates were written in is the page's: sendPage renders this one.
      uiLocales: locale,
    };
    return page;
  }

  /** Every app holding a grant of `sub`, by name: what it may do, the data it sees, since when, last used. */
  async list(sub: string, locale: Locale = FALLBACK_LOCALE): Promise<ConnectedAppView[]> {
    const { db, clock } = this.#deps;
    const [grants, lastUsed, claims] = await Promise.all([
      listUserGrants(db, sub, clock()),
      lastUsedByClient(db, sub),
      grantedClaimsByClient(db, sub),
    ]);
    const apps: ConnectedAppView[] = [];
    for (const grant of grants) {
      const client = await this.#deps.clients.get(grant.client_id);
      // A deleted client's grants went with it (foreign keys); one missing here is being deleted now.
      if (!client) continue;
      apps.push(
        this.#view(client, grant, lastUsed.get(grant.client_id) ?? null, claims.get(grant.client_id) ?? {}, locale),
      );
    }
    return apps.sort((a, b) => a.name.localeCompare(b.name, 'en') || (a.clientId < b.clientId ? -1 : 1));
  }

  /**
   * POST /account/apps/revoke: checks the session and the page's CSRF token (HMAC of the session, compared in
   * constant time), then ends everything the user granted the client, in one transaction: consent, kept
   * claims, unredeemed codes, every refresh-token chain (and, through grant_revocations, /introspect calls
   * the access tokens issued before now inactive), and queues a back-channel logout token for each of the
   * user's sessions that signed in to it. Writes the `consent.revoked` audit event.
   */
  async revoke(
    input: { clientId: string; csrf: string; address?: string },
    cookies: CookieJar,
  ): Promise<RevokeOutcome> {
    const { sessions, csrf, clock, config } = this.#deps;
    const session = await sessions.current(cookies[sessions.cookieName]);
    if (!session)
      throw new OAuthError('login_required', 'you are not signed in (any more); open the page again', {
        status: 403,
      });
    if (!csrf.verify(input.csrf, CSRF_PURPOSE, session.idHash, CSRF_SCOPE))
      throw new OAuthError('invalid_request', 'the form was not valid for this session; open the page again', {
        status: 403,
      });
    const back = `${config.issuer}${ACCOUNT_DESTINATIONS.apps}?revoked=${encodeURIComponent(input.clientId)}`;
    const client = await this.#deps.clients.get(input.clientId);
    // Nothing of an unknown client can be held (foreign keys): a second submit of the same form ends here too.
    if (!client) return { outcome: redirect(back), logoutTokens: 0 };
    const logoutTokens = await this.#revoke(session, client.client_id, clock(), input.address);
    return { outcome: redirect(back), logoutTokens };
  }

  async #revoke(session: Session, clientId: string, now: Date, address: string | undefined): Promise<number> {
    const { revoked, logoutTokens } = await this.#deps.db.transaction().execute(async (tx) => {
      const revoked = await revokeUserGrants(tx, session.sub, { clientId, now });
      return { revoked, logoutTokens: await queueClientLogouts(tx, session.sub, clientId, now) };
    });
    // The audit event (docs/audit.md): the user revoked this app here; never a token or a cookie.
    this.#deps.audit.record({
      type: 'consent.revoked',
      actor: 'user',
      subject: session.sub,
      clientId,
      address: address ?? null,
      // Counts under names the log redaction leaves alone (it hides anything named like a token or code).
      details: {
        via: 'connected_apps',
        refresh: revoked.refresh_tokens,
        codes: revoked.authorization_codes,
        consents: revoked.consents,
        logout_queued: logoutTokens,
      },
    });
    return logoutTokens;
  }

  #view(
    client: Client,
    grant: ClientGrant,
    lastUsed: Date | null,
    kept: Record<string, unknown>,
    locale: Locale,
  ): ConnectedAppView {
    const { catalogue, identity } = this.#deps.scopePolicy;
    const resourceNames = this.#deps.resourceNames ?? new Map<string, string>();
    const chains = grant.refresh_chains;
    const scopes = union([grant.consent?.scopes ?? [], ...chains.map((c) => c.scopes)]);
    const resources = union([grant.consent?.resources ?? [], ...chains.map((c) => c.resources)]);
    const documentHost = client.source === 'metadata_document' ? new URL(client.client_id).host : null;
    // Since the user first allowed it: the consent, or (a first-party app that skips consent) its oldest sign-in.
    const firstSignIn = chains.reduce<Date | null>(
      (min, c) => (min === null || c.auth_time < min ? c.auth_time : min),
      null,
    );
    return {
      clientId: client.client_id,
      name: client.name,
      initial: /[\p{L}\p{N}]/u.exec(client.name)?.[0]?.toUpperCase() ?? '?',
      // A client-id document's logo is the client's own claim: the monogram instead, as on the consent page.
      logo: documentHost ? null : httpsOrNull(client.logo_uri),
      uri: httpsOrNull(client.client_uri),
      identity: documentHost,
      scopes: scopes
        .filter((name) => !identity.has(name))
        .map((name) => ({ name, description: catalogue.get(name) ?? name })),
      personalData: scopes.flatMap((name) => {
        const scope = identity.get(name);
        if (!scope) return [];
        const values = scope.claims.flatMap((claim) => {
          const value = kept[claim];
          return typeof value === 'string' && value.trim() !== '' ? [value.trim().slice(0, 200)] : [];
        });
        const standard = name === OPENID_SCOPE || STANDARD_IDENTITY_SCOPES.has(name);
        return [{ name, description: scope.description, standard, values }];
      }),
      resources: resources.map((uri) => ({ uri, name: resourceNames.get(uri) ?? null })),
      since: shown(grant.consent?.created_at ?? firstSignIn, locale),
      lastUsed: shown(lastUsed, locale),
      disabled: client.disabled_at !== null,
    };
  }
}
