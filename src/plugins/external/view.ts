import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { type Config, issuerIsHttps } from '../../config/index.js';
import {
  type Catalogues,
  escapeHtml,
  FALLBACK_LOCALE,
  negotiateLocale,
  readCatalogues,
  type SafeHtml,
  type Translator,
} from '../../lib/i18n.js';

/**
 * The repository's `views/` directory. Found by walking up from this module, so it is the same from
 * `src/plugins/external/` (tests) and `dist/src/plugins/external/` (built; tsc does not copy views/).
 */
export function viewsDirectory(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'views', 'layout.eta')))
      return join(dir, 'views');
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no views/ directory (with layout.eta) next to a package.json above ${from}`);
    dir = parent;
  }
}

/** The one stylesheet; its URL carries a content hash so it can be cached for a year. */
const STYLESHEET_PATH = '/assets/gatehouse.css';
const ONE_YEAR = 31_536_000;

/**
 * Content-Security-Policy of every page: no script at all, styles only from our stylesheet, forms only to
 * ourselves (plus, per page, where a form's redirect leads), never framed (clickjacking on the consent
 * page), no <base> rewriting.
 */
export const PAGE_CSP_DIRECTIVES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  defaultSrc: ["'none'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'https:', 'data:'],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
});

function directivesWith(formRedirects: readonly string[]): Record<string, string[]> {
  const directives: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(PAGE_CSP_DIRECTIVES)) directives[name] = [...values];
  directives.formAction = [...new Set([...(directives.formAction ?? []), ...formRedirects])];
  return directives;
}

function serialise(directives: Record<string, readonly string[]>): string {
  return Object.entries(directives)
    .map(([name, values]) => `${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${values.join(' ')}`)
    .join(';');
}

/** The essential page headers, for a reply @fastify/helmet never saw. */
const FALLBACK_HEADERS: Record<string, string> = {
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

const SIMPLE_ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/;
const SIMPLE_SCHEME = /^[a-z][a-z0-9+.-]*:$/;

/**
 * The CSP source expression allowing a form's redirect to `uri`: its origin, or just its scheme when the
 * origin cannot be written as a host-source (IPv6 literals, unusual host characters such as `;` that would
 * end the directive). Chromium applies form-action to every redirect after a form submission, so a 303
 * to the client after POST /consent is blocked unless its origin is listed (CSP3 §6.4.1).
 */
export function formActionSource(uri: string): string {
  const url = new URL(uri);
  if (url.protocol === 'http:' || url.protocol === 'https:')
    return SIMPLE_ORIGIN.test(url.origin) ? url.origin : url.protocol;
  if (SIMPLE_SCHEME.test(url.protocol)) return url.protocol;
  throw new Error('a redirect URI with an unusable scheme');
}

function helmetOptions(config: Pick<Config, 'issuer'>): FastifyHelmetOptions {
  return {
    // Pages opt in through sendPage; JSON endpoints keep their own headers.
    global: false,
    contentSecurityPolicy: { useDefaults: false, directives: directivesWith([]) },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // HSTS only means something over https; on an http development issuer it would be ignored anyway.
    strictTransportSecurity: issuerIsHttps(config) ? { maxAge: ONE_YEAR } : false,
  };
}

/** The operator's branding (BRAND_*), as every page shows it. */
export interface PageBrand {
  /** BRAND_NAME, or null. */
  name: string | null;
  /** BRAND_LOGO_URL (https or data:image), or null. */
  logo: string | null;
  /** BRAND_SUPPORT_URL, or null. */
  supportUrl: string | null;
  /** BRAND_SUPPORT_EMAIL, or null. */
  supportEmail: string | null;
}

/** The stylesheet rules BRAND_PRIMARY_COLOR adds: the colour as CSS custom properties, with a readable text colour. */
export function brandStylesheet(color: string): string {
  if (color === '') return '';
  const hex = color.length === 4 ? `#${[...color.slice(1)].map((c) => c + c).join('')}` : color;
  const channels = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  // WCAG 2.x relative luminance: white text on dark colours, near-black on light ones.
  const [r, g, b] = channels.map((c) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const text = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? '#111111' : '#ffffff';
  const hover = `#${channels
    .map((c) =>
      Math.round(c * 0.85)
        .toString(16)
        .padStart(2, '0'),
    )
    .join('')}`;
  // Light scheme: links and the focus ring too. Dark scheme: only the primary button (a dark brand colour
  // would make links unreadable on the dark background).
  return (
    `\n/* BRAND_PRIMARY_COLOR */\n:root {\n  --brand: ${hex};\n  --brand-hover: ${hover};\n  --brand-text: ${text};\n}\n` +
    `@media (prefers-color-scheme: light) {\n  :root {\n    --accent: ${hex};\n    --accent-hover: ${hover};\n    --focus: ${hex};\n  }\n}\n`
  );
}

/** Values every template sees as `it.<name>`. */
export interface PageContext {
  /** The stylesheet URL, under the issuer's path, with a cache-busting hash. */
  stylesheet: string;
  /** The issuer's path ('' at the root), for links and form actions behind a path-prefixed proxy. */
  basePath: string;
  /** The issuer's host, shown on every page so users can see which server they are talking to. */
  serverName: string;
  /** What page titles end with: BRAND_NAME, else the issuer's host. */
  siteName: string;
  /** The operator's branding. */
  brand: PageBrand;
}

/** What a template gets to write text in the page's language (`it.t`, `it.th`, `it.lang`, `it.span`). */
interface PageLanguage {
  lang: string;
  t: Translator['t'];
  th: Translator['html'];
  /** `<span class="…">text</span>`, escaped, as a placeholder value of `it.th`. */
  span: (className: string, text: string) => SafeHtml;
}

function span(className: string, text: string): SafeHtml {
  return { safeHtml: `<span class="${escapeHtml(className)}">${escapeHtml(text)}</span>` };
}

function pageLanguage(translator: Translator): PageLanguage {
  return { lang: translator.locale, t: translator.t, th: translator.html, span };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** What every page template gets (stylesheet URL, base path, branding). */
    pageContext: PageContext;
    /** The pages' message catalogues (views/locales/*.json), read once at start. */
    catalogues: Catalogues;
    /** The essential page headers for a page sent without @fastify/helmet (HSTS included over https). */
    pageFallbackHeaders: Readonly<Record<string, string>>;
  }
}

export interface ViewPluginOptions {
  /** The views directory; the repository's `views/` by default. */
  root?: string;
}

/**
 * Server-rendered pages: @fastify/view with Eta (auto-escaping) and the stylesheet at GET /assets/gatehouse.css;
 * the page security headers come from pageSecurityHeaders, applied by sendPage.
 */
export default fp<ViewPluginOptions>(
  async function viewPlugin(app: FastifyInstance, { root }) {
    const { config } = app;
    const templates = root ?? viewsDirectory();
    const production = config.nodeEnv === 'production';
    // The operator's colour is appended to the one stylesheet: the pages' CSP keeps allowing styles from
    // 'self' only, with no inline style, nonce or hash.
    const css = Buffer.concat([
      readFileSync(join(templates, 'static', 'gatehouse.css')),
      Buffer.from(brandStylesheet(config.branding.primaryColor)),
    ]);
    // A missing or inconsistent catalogue stops the start, naming the file and key.
    const catalogues = readCatalogues(join(templates, 'locales'));
    app.decorate('catalogues', catalogues);
    const etag = `"${createHash('sha256').update(css).digest('base64url').slice(0, 22)}"`;
    const issuer = new URL(config.issuer);
    const basePath = issuer.pathname.replace(/\/$/, '');
    const pageContext: PageContext = {
      stylesheet: `${basePath}${STYLESHEET_PATH}?v=${etag.slice(1, 13)}`,
      basePath,
      serverName: issuer.host,
      siteName: config.branding.name || issuer.host,
      brand: {
        name: config.branding.name || null,
        logo: config.branding.logoUrl || null,
        supportUrl: config.branding.supportUrl || null,
        supportEmail: config.branding.supportEmail || null,
      },
    };
    app.decorate('pageContext', pageContext);
    // The same HSTS @fastify/helmet sends (its default includeSubDomains), only over an https issuer.
    const hsts: Record<string, string> = issuerIsHttps(config)
      ? { 'strict-transport-security': `max-age=${ONE_YEAR}; includeSubDomains` }
      : {};
    app.decorate('pageFallbackHeaders', Object.freeze({ ...FALLBACK_HEADERS, ...hsts }));

    // autoEscape is Eta's default; set here so no later change of default can silently turn it off.
    const eta = new Eta({ views: templates, autoEscape: true, cache: production });
    // English by default, for a page rendered outside sendPage (app.view in a test); sendPage negotiates.
    const defaultContext = { ...pageContext, ...pageLanguage(catalogues.get(FALLBACK_LOCALE)) };
    await app.register(view, { engine: { eta }, templates, production, defaultContext });

    app.get(
      STYLESHEET_PATH,
      {
        schema: { querystring: { type: 'object', properties: { v: { type: 'string', maxLength: 64 } } } },
      },
      async (request, reply) => {
        reply
          .header('content-type', 'text/css; charset=utf-8')
          .header('cache-control', `public, max-age=${ONE_YEAR}, immutable`)
          .header('etag', etag)
          .header('x-content-type-options', 'nosniff');
        if (request.headers['if-none-match'] === etag) return reply.code(304).send();
        return reply.send(css);
      },
    );
  },
  { name: 'view' },
);

/**
 * The page security headers (@fastify/helmet: CSP, frame and referrer policies…) for the routes registered
 * in the same scope. Registered only around the routes that render pages (authorize, sign-in, consent,
 * sign-out): helmet's per-request hooks cost the JSON endpoints (the token endpoint above all) measurable
 * time for headers they never send. A page sent from anywhere else still gets the essential headers.
 */
export const pageSecurityHeaders = fp(
  async function pageSecurityHeaders(app: FastifyInstance) {
    await app.register(helmet, helmetOptions(app.config));
  },
  { name: 'page-security-headers' },
);

/** Per-page options of sendPage. */
export interface PageOptions {
  /** Redirect URIs a form on the page may end up at after its POST (added to CSP form-action). */
  formRedirects?: readonly string[];
  /**
   * The `ui_locales` the page is for (OIDC Core §3.1.2.1), such as the pending authorization request's.
   * Absent: a `ui_locales` parameter of the request itself (query or form), if any.
   */
  uiLocales?: string | null;
}

/** A string `ui_locales` parameter of the request's query or form body, or null. */
function requestUiLocales(request: FastifyRequest): string | null {
  for (const params of [request.body, request.query]) {
    const value = params && typeof params === 'object' ? (params as Record<string, unknown>).ui_locales : undefined;
    if (typeof value === 'string') return value.slice(0, 256);
  }
  return null;
}

/**
 * Renders `views/<template>.eta` as a page with the page security headers and `Cache-Control: no-store`, in
 * the language negotiated from `ui_locales` and Accept-Language (`it.t`, `it.lang`).
 */
export async function sendPage(
  reply: FastifyReply,
  template: string,
  data: Record<string, unknown>,
  status = 200,
  options: PageOptions = {},
): Promise<FastifyReply> {
  const { request } = reply;
  const uiLocales = options.uiLocales === undefined ? requestUiLocales(request) : options.uiLocales;
  const locale = negotiateLocale(uiLocales, request.headers['accept-language']);
  const html = await reply.viewAsync(template, { ...data, ...pageLanguage(reply.server.catalogues.get(locale)) });
  // The page's language depends on Accept-Language: a shared cache must not hand it to another browser.
  reply.header('vary', 'Accept-Language');
  const redirects = (options.formRedirects ?? []).map(formActionSource);
  // @fastify/helmet decorates the reply in an onRequest hook; an error page for a request stopped by an
  // earlier onRequest hook (a rate limit, say) never got it, and must not be sent without the headers.
  if (typeof reply.helmet !== 'function') {
    reply.headers({
      ...reply.server.pageFallbackHeaders,
      'content-security-policy': serialise(directivesWith(redirects)),
    });
  } else if (redirects.length > 0) {
    reply.helmet({ contentSecurityPolicy: { useDefaults: false, directives: directivesWith(redirects) } });
  } else {
    reply.helmet();
  }
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('text/html; charset=utf-8')
    .send(html);
}
