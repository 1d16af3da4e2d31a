import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Message catalogues and language negotiation for the server-rendered pages. A catalogue is a flat JSON
 * object of message key to text with `{name}` placeholders; every catalogue has exactly the keys and
 * placeholders of the English one (checked when they are read, once at start). Lookups are a Map get and
 * a replace, cheap enough for every page.
 */

/** The languages the pages are written in, English first (the fallback). One `<tag>.json` catalogue each. */
export const SUPPORTED_LOCALES = ['en', 'de', 'fr', 'es', 'ja'] as const;

/** A language the pages are written in. */
export type Locale = (typeof SUPPORTED_LOCALES)[number];

/** The language used when nothing the browser or the client asks for is supported. */
export const FALLBACK_LOCALE: Locale = 'en';

/** One catalogue: message key to text. */
export type Messages = Readonly<Record<string, string>>;

/** Text already safe to place in HTML, as a placeholder value of `Translator.html`. */
export interface SafeHtml {
  readonly safeHtml: string;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and quoted attribute values (the same characters Eta escapes). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const PLACEHOLDER = /\{([a-zA-Z][a-zA-Z0-9_]*)\}/g;

/** The placeholder names of a message, sorted (for comparing catalogues). */
export function placeholders(message: string): string[] {
  return [...new Set([...message.matchAll(PLACEHOLDER)].map((m) => m[1]!))].sort();
}

/** Messages of one language, looked up by key with `{name}` placeholders filled in. */
export interface Translator {
  /** The language's tag, for `<html lang>`. */
  readonly locale: Locale;
  /** The message as plain text (the template escapes it). Throws for a key the catalogue lacks: a typo is a bug. */
  t: (key: string, params?: Readonly<Record<string, string | number>>) => string;
  /**
   * The message as HTML: its text and every string value escaped, SafeHtml values (markup the template
   * built around escaped text) inserted as they are.
   */
  html: (key: string, params?: Readonly<Record<string, string | number | SafeHtml>>) => string;
}

function message(messages: ReadonlyMap<string, string>, locale: string, key: string): string {
  const text = messages.get(key);
  if (text === undefined) throw new Error(`no message "${key}" in the ${locale} catalogue`);
  return text;
}

function translator(locale: Locale, messages: ReadonlyMap<string, string>): Translator {
  return Object.freeze({
    locale,
    t(key: string, params: Readonly<Record<string, string | number>> = {}): string {
      return message(messages, locale, key).replace(PLACEHOLDER, (whole, name: string) =>
        name in params ? String(params[name]) : whole,
      );
    },
    html(key: string, params: Readonly<Record<string, string | number | SafeHtml>> = {}): string {
      const text = message(messages, locale, key);
      let out = '';
      let last = 0;
      for (const match of text.matchAll(PLACEHOLDER)) {
        out += escapeHtml(text.slice(last, match.index));
        const value = params[match[1]!];
        if (value === undefined) out += escapeHtml(match[0]);
        else out += typeof value === 'object' ? value.safeHtml : escapeHtml(String(value));
        last = match.index + match[0].length;
      }
      return out + escapeHtml(text.slice(last));
    },
  });
}

/**
 * Problems of a set of catalogues against the English one: a missing catalogue, a missing or extra key, a
 * message that is not a non-empty string, or placeholders that differ. Empty when all is well.
 */
export function catalogueProblems(catalogues: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const english = catalogues[FALLBACK_LOCALE];
  if (!english || typeof english !== 'object') return [`no ${FALLBACK_LOCALE} catalogue`];
  const reference = english as Record<string, unknown>;
  for (const locale of SUPPORTED_LOCALES) {
    const catalogue = catalogues[locale];
    if (!catalogue || typeof catalogue !== 'object' || Array.isArray(catalogue)) {
      problems.push(`${locale}: no catalogue (a JSON object of message key to text)`);
      continue;
    }
    const messages = catalogue as Record<string, unknown>;
    for (const [key, text] of Object.entries(messages)) {
      if (typeof text !== 'string' || text.trim() === '')
        problems.push(`${locale}: "${key}" must be a non-empty string`);
      else if (!(key in reference))
        problems.push(`${locale}: "${key}" is not a key of the ${FALLBACK_LOCALE} catalogue`);
      else if (placeholders(text).join() !== placeholders(String(reference[key])).join())
        problems.push(
          `${locale}: "${key}" has placeholders {${placeholders(text).join('}, {')}} where ${FALLBACK_LOCALE} has {${placeholders(String(reference[key])).join('}, {')}}`,
        );
    }
    for (const key of Object.keys(reference)) if (!(key in messages)) problems.push(`${locale}: "${key}" is missing`);
  }
  for (const locale of Object.keys(catalogues))
    if (!(SUPPORTED_LOCALES as readonly string[]).includes(locale))
      problems.push(`${locale}: not a supported locale (add it to SUPPORTED_LOCALES in src/lib/i18n.ts)`);
  return problems;
}

/**
 * A BCP 47 language tag reduced to what matching needs: lower case, `_` read as `-` (a common slip),
 * or null for anything that is not a tag (`*`, empty, stray characters).
 */
function normaliseTag(tag: string): string | null {
  const value = tag.trim().toLowerCase().replace(/_/g, '-');
  return /^[a-z]{1,8}(-[a-z0-9]{1,8})*$/.test(value) ? value : null;
}

/**
 * RFC 4647 §3.4 lookup: the tag itself, then with its last subtag cut off, until one is supported
 * (`de-DE-1996` → `de-DE` → `de`). Null when none is.
 */
export function lookupLocale(tag: string): Locale | null {
  let candidate = normaliseTag(tag);
  while (candidate) {
    const found = SUPPORTED_LOCALES.find((locale) => locale === candidate);
    if (found) return found;
    const cut = candidate.lastIndexOf('-');
    candidate = cut > 0 ? candidate.slice(0, cut) : null;
  }
  return null;
}

/** OpenID Connect Core §3.1.2.1 `ui_locales`: space-separated BCP 47 tags, in order of preference. */
export function parseUiLocales(value: string | null | undefined): string[] {
  return (value ?? '').split(' ').filter((tag) => tag !== '');
}

/**
 * RFC 9110 §12.5.4 Accept-Language: the language ranges, most preferred first (by `q`, then by position),
 * without those the browser refuses (`q=0`) or that are malformed.
 */
export function parseAcceptLanguage(header: string | undefined): string[] {
  if (!header) return [];
  const ranges: Array<{ tag: string; q: number; index: number }> = [];
  // A header is short in practice; the cap keeps a hostile one from costing more than a glance.
  header
    .slice(0, 1024)
    .split(',')
    .forEach((part, index) => {
      const [tag = '', ...parameters] = part.split(';').map((s) => s.trim());
      let q = 1;
      for (const parameter of parameters) {
        const match = /^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$/i.exec(parameter);
        if (match) q = Number(match[1]);
        else if (/^q=/i.test(parameter)) q = 0; // RFC 9110 §12.4.2: an invalid weight; ignore the range
      }
      if (tag !== '' && q > 0) ranges.push({ tag, q, index });
    });
  return ranges.sort((a, b) => b.q - a.q || a.index - b.index).map((r) => r.tag);
}

/**
 * The page language: the first of the client's `ui_locales` (OIDC Core §3.1.2.1) that is supported, else
 * the browser's most preferred supported Accept-Language range (RFC 9110 §12.5.4), else English.
 */
export function negotiateLocale(uiLocales: string | null | undefined, acceptLanguage: string | undefined): Locale {
  for (const tag of parseUiLocales(uiLocales)) {
    const found = lookupLocale(tag);
    if (found) return found;
  }
  for (const tag of parseAcceptLanguage(acceptLanguage)) {
    const found = lookupLocale(tag);
    if (found) return found;
  }
  return FALLBACK_LOCALE;
}

/** Every supported language's translator, read and checked once at start. */
export interface Catalogues {
  /** The translator of a supported language. */
  get(locale: Locale): Translator;
}

/** Builds the translators from parsed catalogues; throws listing every problem (see catalogueProblems). */
export function cataloguesFrom(catalogues: Readonly<Record<string, unknown>>): Catalogues {
  const problems = catalogueProblems(catalogues);
  if (problems.length > 0) throw new Error(`message catalogues are inconsistent:\n  - ${problems.join('\n  - ')}`);
  const translators = new Map<Locale, Translator>(
    SUPPORTED_LOCALES.map((locale) => [
      locale,
      translator(locale, new Map(Object.entries(catalogues[locale] as Record<string, string>))),
    ]),
  );
  return { get: (locale) => translators.get(locale)! };
}

/** Reads `<dir>/<locale>.json` for every supported locale and builds the translators (once, at start). */
export function readCatalogues(dir: string): Catalogues {
  const parsed: Record<string, unknown> = {};
  for (const locale of SUPPORTED_LOCALES) {
    const file = join(dir, `${locale}.json`);
    try {
      parsed[locale] = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read the ${locale} message catalogue ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return cataloguesFrom(parsed);
}
