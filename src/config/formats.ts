import convict from 'convict';
import { OPENID_SCOPE, RESERVED_CLAIMS, STANDARD_IDENTITY_SCOPES } from '../lib/oidc-claims.js';
import { SCOPE_TOKEN, canonicalUrl } from '../lib/syntax.js';

/**
 * A convict format whose valid values are of type T. `value` is never set: it only carries T to the
 * schema, so `Settings` (schema.ts) is derived from each setting's format rather than written by hand.
 */
interface TypedFormat<T> {
  coerce?: (value: unknown) => unknown;
  validate(value: unknown): void;
  readonly value?: T;
}

function format<T>(definition: Omit<TypedFormat<T>, 'value'>): TypedFormat<T> {
  return definition;
}

/** An enumerated format (convict checks the value is one of these); typed as their union. */
export function oneOf<const T extends string>(...values: T[]): T[] {
  return values;
}

/** Schemes that name something other than an app, never acceptable as a private-use redirect scheme. */
const RESERVED_SCHEMES: ReadonlySet<string> = new Set([
  'http',
  'https',
  'javascript',
  'data',
  'vbscript',
  'file',
  'blob',
  'about',
  'filesystem',
  'view-source',
  'ws',
  'wss',
  'ftp',
  'mailto',
  'tel',
  'sms',
  'intent',
  'content',
  'chrome',
  'edge',
  'resource',
  'urn',
]);

/** Parses NATIVE_REDIRECT_SCHEMES: scheme names, lower-cased, without a trailing colon. */
export function parseSchemeList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((item) => item.toLowerCase().replace(/:(\/\/)?$/, ''));
}

/** Parses SCOPES: a JSON object of name to description, or space-separated names. */
export function parseScopeCatalogue(value: string): Map<string, string> {
  const trimmed = value.trim();
  if (trimmed === '') return new Map();
  if (trimmed.startsWith('{')) {
    const parsed: unknown = JSON.parse(trimmed);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('must be a JSON object');
    return new Map(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  }
  return new Map(trimmed.split(/\s+/).map((name) => [name, name]));
}

/** An operator's identity scope (CLAIMS): the host claims it releases and the consent page's words for them. */
export interface ClaimScope {
  description: string;
  claims: readonly string[];
}

/** A claim name an operator may define: printable ASCII without quotes, spaces or commas. */
const CLAIM_NAME = /^[\x21\x23-\x2B\x2D-\x7E]{1,64}$/;

/**
 * Parses CLAIMS: a JSON object of scope name to `{"description": "…", "claims": ["…"]}`, or
 * space-separated `scope:claim1,claim2` entries (the consent page then names the claims). Throws a
 * message naming the first bad entry.
 */
export function parseClaimsCatalogue(value: string): Map<string, ClaimScope> {
  const trimmed = value.trim();
  const out = new Map<string, ClaimScope>();
  if (trimmed === '') return out;
  let entries: Array<[string, unknown, unknown]>;
  if (trimmed.startsWith('{')) {
    const parsed: unknown = JSON.parse(trimmed);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('must be a JSON object');
    entries = Object.entries(parsed as Record<string, unknown>).map(([scope, spec]) => {
      if (!spec || typeof spec !== 'object' || Array.isArray(spec))
        throw new Error(`"${scope}" must map to {"description": "...", "claims": ["..."]}`);
      const { description, claims, ...rest } = spec as Record<string, unknown>;
      const extra = Object.keys(rest)[0];
      if (extra !== undefined) throw new Error(`"${scope}" has an unknown member "${extra}"`);
      return [scope, description, claims];
    });
  } else {
    entries = trimmed.split(/\s+/).map((entry) => {
      const colon = entry.indexOf(':');
      if (colon <= 0) throw new Error(`"${entry}" is not scope:claim1,claim2`);
      const claims = entry.slice(colon + 1).split(',');
      return [entry.slice(0, colon), claims.join(', '), claims];
    });
  }
  for (const [scope, description, claims] of entries) {
    if (!SCOPE_TOKEN.test(scope)) throw new Error(`"${scope}" is not a valid scope name (RFC 6749 §3.3)`);
    if (scope === OPENID_SCOPE || STANDARD_IDENTITY_SCOPES.has(scope))
      throw new Error(`"${scope}" is a standard OpenID Connect scope; it cannot be redefined`);
    if (typeof description !== 'string' || description.trim() === '' || description.length > 200)
      throw new Error(`"${scope}" needs a description of at most 200 characters`);
    if (!Array.isArray(claims) || claims.length === 0 || claims.length > 32)
      throw new Error(`"${scope}" must name between 1 and 32 claims`);
    for (const claim of claims) {
      if (typeof claim !== 'string' || !CLAIM_NAME.test(claim))
        throw new Error(`"${scope}": ${JSON.stringify(claim)} is not a valid claim name`);
      if (RESERVED_CLAIMS.has(claim))
        throw new Error(`"${scope}": "${claim}" is a claim Gatehouse sets itself (OIDC Core §2)`);
    }
    out.set(scope, { description: description.trim(), claims: [...new Set(claims as string[])] });
  }
  return out;
}

/** Parses RESOURCES (or DEFAULT_RESOURCE) into canonical URLs. */
export function parseResourceList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((v) => canonicalUrl(v));
}

/**
 * Parses RESOURCE_NAMES: a JSON object of resource URI to display name, keyed by the URI's canonical form
 * (as RESOURCES is). Throws a message naming the first bad entry.
 */
export function parseResourceNames(value: string): Map<string, string> {
  const trimmed = value.trim();
  const out = new Map<string, string>();
  if (trimmed === '') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new Error('is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('is not a JSON object');
  for (const [uri, name] of Object.entries(parsed as Record<string, unknown>)) {
    let canonical: string;
    try {
      canonical = canonicalUrl(uri);
    } catch {
      throw new Error(`"${uri}" is not an absolute URI`);
    }
    if (typeof name !== 'string' || !isDisplayText(name, 100))
      throw new Error(`"${uri}" needs a name of 1 to 100 characters without control characters`);
    out.set(canonical, name.trim());
  }
  return out;
}

/** Text fit to show on a page as a name: not blank, at most `max` characters, no control characters. */
function isDisplayText(value: string, max: number): boolean {
  // eslint-disable-next-line no-control-regex
  return value.trim() !== '' && [...value].length <= max && !/[\u0000-\u001f\u007f-\u009f]/.test(value);
}

/** Media types a data: logo may have: images a browser shows in <img> and never runs script from. */
const LOGO_DATA_URI = /^data:image\/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$/;
const LOGO_DATA_MAX = 32 * 1024;

/** Throws unless every item is an absolute URI without fragment (RFC 8707 §2). */
function validateResources(value: unknown): string[] {
  const items = String(value)
    .split(/[\s,]+/)
    .filter(Boolean);
  for (const item of items) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new Error(`"${item}" is not an absolute URI (RFC 8707 §2)`);
    }
    if (item.includes('#') || url.hash) throw new Error(`"${item}" must not have a fragment (RFC 8707 §2)`);
  }
  return items;
}

/** Whether a value is an absolute https URL without credentials. */
function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.hostname !== '' && !url.username && !url.password;
  } catch {
    return false;
  }
}

function coerceBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
}

function coerceInt(value: unknown): unknown {
  return typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
}

/** Gatehouse's own formats, by the name the schema gives them. */
const FORMATS = {
  'strict-boolean': format<boolean>({
    coerce: coerceBoolean,
    validate(value) {
      if (typeof value !== 'boolean') throw new Error('must be true or false');
    },
  }),
  'positive-int': format<number>({
    coerce: coerceInt,
    validate(value) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
        throw new Error('must be a positive integer');
      }
    },
  }),
  // Convict's own `port` format accepts 1.5; a TCP port is a whole number 0–65535 (0: off or any free port).
  'tcp-port': format<number>({
    coerce: coerceInt,
    validate(value) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 65535) {
        throw new Error('ports must be within range 0 - 65535, a whole number');
      }
    },
  }),
  // A share of something, in whole percent: 1–100 (0 would mean never, which no setting of this kind allows).
  percent: format<number>({
    coerce: coerceInt,
    validate(value) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 100) {
        throw new Error('must be a whole percentage from 1 to 100');
      }
    },
  }),
  'non-negative-int': format<number>({
    coerce: coerceInt,
    validate(value) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new Error('must be a non-negative integer');
      }
    },
  }),
  'scope-catalogue': format<string>({
    validate(value) {
      let catalogue: Map<string, string>;
      try {
        catalogue = parseScopeCatalogue(String(value));
      } catch (err) {
        throw new Error(
          `must be a JSON object of scope to description, or space-separated names (${(err as Error).message})`,
          { cause: err },
        );
      }
      for (const name of catalogue.keys()) {
        if (!SCOPE_TOKEN.test(name)) throw new Error(`"${name}" is not a valid scope name (RFC 6749 §3.3)`);
      }
    },
  }),
  'claims-catalogue': format<string>({
    validate(value) {
      try {
        parseClaimsCatalogue(String(value));
      } catch (err) {
        throw new Error(
          `must be a JSON object of scope to {"description","claims"}, or space-separated scope:claim1,claim2 entries (${(err as Error).message})`,
          { cause: err },
        );
      }
    },
  }),
  'resource-list': format<string>({
    validate(value) {
      validateResources(value);
    },
  }),
  resource: format<string>({
    validate(value) {
      if (validateResources(value).length > 1) throw new Error('must be a single URI');
    },
  }),
  'scheme-list': format<string>({
    validate(value) {
      for (const item of parseSchemeList(String(value))) {
        if (!/^[a-z][a-z0-9+-]*$/.test(item))
          throw new Error(
            `"${item}" is not a single-label URI scheme name (letters, digits, + and -; reverse-domain schemes need no setting)`,
          );
        if (RESERVED_SCHEMES.has(item))
          throw new Error(`"${item}" is a scheme browsers or the OS give a meaning; it cannot identify an app`);
      }
    },
  }),
  'non-empty-string': format<string>({
    validate(value) {
      if (typeof value !== 'string' || value.trim() === '') throw new Error('must not be empty');
    },
  }),
  'sql-identifier': format<string>({
    validate(value) {
      if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
        throw new Error('must be a lower-case SQL identifier (letters, digits, underscore; at most 63)');
      }
    },
  }),
  'host-address': format<string>({
    validate(value) {
      if (typeof value !== 'string' || !/^[A-Za-z0-9.:_-]+$/.test(value)) {
        throw new Error('must be a host name or IP address');
      }
    },
  }),
  'trust-proxy': format<string>({
    validate(value) {
      if (typeof value !== 'string') throw new Error('must be a string');
      if (/^(true|false|\d+)$/.test(value)) return;
      const parts = value.split(',').map((s) => s.trim());
      if (parts.some((p) => !/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(p) && !/^(loopback|linklocal|uniquelocal)$/.test(p))) {
        throw new Error('must be true, false, a hop count, or a comma-separated list of addresses/CIDRs');
      }
    },
  }),
  'issuer-url': format<string>({
    validate(value) {
      if (value === '') return;
      if (typeof value !== 'string') throw new Error('must be a URL');
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new Error('must be an absolute URL');
      }
      // RFC 8414 §2: https, no query or fragment.
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
      if (url.search || url.hash || value.includes('#') || value.includes('?')) {
        throw new Error('must not have a query or fragment (RFC 8414 §2)');
      }
      if (url.username || url.password) throw new Error('must not contain credentials');
    },
  }),
  'optional-url': format<string>({
    validate(value) {
      if (value === '') return;
      let url: URL;
      try {
        url = new URL(String(value));
      } catch {
        throw new Error('must be an absolute http(s) URL');
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an absolute http(s) URL');
    },
  }),
  'resource-names': format<string>({
    validate(value) {
      try {
        parseResourceNames(String(value));
      } catch (err) {
        throw new Error(`must be a JSON object of resource URI to display name (${(err as Error).message})`, {
          cause: err,
        });
      }
    },
  }),
  'brand-name': format<string>({
    validate(value) {
      if (value === '') return;
      if (typeof value !== 'string' || !isDisplayText(value, 100))
        throw new Error('must be 1 to 100 characters without control characters');
    },
  }),
  // An https URL (the page CSP's img-src allows https: and data: only; http would be mixed content), or a
  // small inline image so the pages need no other host.
  'brand-logo': format<string>({
    validate(value) {
      if (value === '') return;
      const text = String(value);
      if (text.startsWith('data:')) {
        if (!LOGO_DATA_URI.test(text))
          throw new Error(
            'a data: logo must be data:image/(png|jpeg|gif|webp|svg+xml);base64,<base64> (no other media type, no plain-text encoding)',
          );
        if (text.length > LOGO_DATA_MAX) throw new Error(`a data: logo must be at most ${LOGO_DATA_MAX} characters`);
        return;
      }
      if (!isHttpsUrl(text)) throw new Error('must be an https:// URL or a data:image/…;base64 URI');
    },
  }),
  'hex-color': format<string>({
    validate(value) {
      if (value === '') return;
      if (typeof value !== 'string' || !/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(value))
        throw new Error('must be a hex colour, #rrggbb or #rgb');
    },
  }),
  'optional-https-url': format<string>({
    validate(value) {
      if (value === '') return;
      if (!isHttpsUrl(String(value))) throw new Error('must be an absolute https:// URL');
    },
  }),
  'optional-email': format<string>({
    validate(value) {
      if (value === '') return;
      // A plain addr-spec (RFC 5322 §3.4.1, dot-atom local part): it goes into a mailto: link as it is.
      if (
        typeof value !== 'string' ||
        value.length > 254 ||
        !/^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(value)
      )
        throw new Error('must be an email address (name@example.com)');
    },
  }),
  'postgres-url': format<string>({
    validate(value) {
      if (value === '') return;
      if (typeof value !== 'string') throw new Error('must be a postgres:// URL');
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new Error('must be a postgres:// URL');
      }
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
        throw new Error('must be a postgres:// or postgresql:// URL');
      }
      if (!url.hostname && !url.searchParams.get('host')) throw new Error('must name a host');
    },
  }),
};

/** convict's built-in formats the schema uses, with what they hold. */
interface BuiltinFormats {
  port: number;
}

/** A format name the schema may give a setting: one of Gatehouse's or a convict built-in. */
export type FormatName = keyof typeof FORMATS | keyof BuiltinFormats;

/** What a setting holds once validated, read from its format: a named format, `String`, or `oneOf(…)`. */
export type FormatValue<F> = F extends StringConstructor
  ? string
  : F extends readonly (infer U)[]
    ? U
    : F extends keyof BuiltinFormats
      ? BuiltinFormats[F]
      : F extends keyof typeof FORMATS
        ? (typeof FORMATS)[F] extends TypedFormat<infer T>
          ? T
          : never
        : never;

let formatsAdded = false;

/** Registers Gatehouse's formats with convict (once per process). */
export function addFormats(): void {
  if (formatsAdded) return;
  formatsAdded = true;
  for (const [name, definition] of Object.entries(FORMATS)) convict.addFormat({ name, ...definition });
}
