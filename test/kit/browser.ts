import type { FastifyInstance } from 'fastify';
import { ISSUER } from './issuer.js';

interface StoredCookie {
  value: string;
  path: string;
  expires: number | null;
}

/**
 * A browser's cookie jar: cookies per host name (RFC 6265 §5.3: they do not isolate by port, so apps on
 * 127.0.0.1 share them, and their names must not clash), with Path and expiry (Max-Age, Expires).
 */
export class CookieJar {
  private readonly byHost = new Map<string, Map<string, StoredCookie>>();

  /** Remembers the Set-Cookie lines of a response from `url`; an empty value or a past expiry deletes. */
  store(url: URL | string, setCookies: readonly string[]): void {
    const hostname = new URL(url).hostname;
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expires: number | null = null;
      for (const attribute of attributes) {
        const at = attribute.indexOf('=');
        const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
        const val = at < 0 ? '' : attribute.slice(at + 1).trim();
        if (key === 'path' && val.startsWith('/')) path = val;
        else if (key === 'max-age') expires = Date.now() + Number(val) * 1000;
        else if (key === 'expires' && expires === null) expires = Date.parse(val);
      }
      const jar = this.byHost.get(hostname) ?? new Map<string, StoredCookie>();
      this.byHost.set(hostname, jar);
      if (value === '' || (expires !== null && expires <= Date.now())) jar.delete(name);
      else jar.set(name, { value, path, expires });
    }
  }

  /** The Cookie header a browser sends to `url` (RFC 6265 §5.4: host, path and expiry match), if any. */
  header(url: URL | string): string | undefined {
    const target = new URL(url);
    const jar = this.byHost.get(target.hostname);
    if (!jar) return undefined;
    const now = Date.now();
    const pairs = [...jar]
      .filter(
        ([, c]) =>
          (c.expires === null || c.expires > now) &&
          (target.pathname === c.path || target.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)),
      )
      .map(([name, c]) => `${name}=${c.value}`);
    return pairs.length > 0 ? pairs.join('; ') : undefined;
  }

  /** Every live cookie's name and value (all hosts; the tests' apps share 127.0.0.1). */
  get cookies(): ReadonlyMap<string, string> {
    const now = Date.now();
    const all = new Map<string, string>();
    for (const jar of this.byHost.values())
      for (const [name, c] of jar) if (c.expires === null || c.expires > now) all.set(name, c.value);
    return all;
  }

  /** The cookie names held for a host. */
  names(hostname: string): string[] {
    return [...(this.byHost.get(hostname)?.keys() ?? [])];
  }
}

/** One response as the browser saw it. */
export interface Page {
  method: string;
  /** The absolute URL requested. */
  url: string;
  status: number;
  /** The same as `status` (app.inject's name for it). */
  statusCode: number;
  /** Lower-case header names; Set-Cookie is a list. */
  headers: Record<string, string | string[] | undefined>;
  /** The Location header resolved against `url`, or null. */
  location: string | null;
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as app.inject's json(): tests read the parsed body's fields directly
  json<T = any>(): T;
}

/** One step of a flow: method, URL and status. */
export interface Hop {
  method: string;
  url: string;
  status: number;
}

export interface RequestInit {
  method?: string;
  /** Sent as application/x-www-form-urlencoded (and makes the method POST). */
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

/**
 * The one test browser: a cookie jar, no automatic redirects (each hop can be checked), every request
 * recorded in `hops`. It reaches apps in process through app.inject (one app at `origin`, ISSUER by
 * default, or several apps by origin), or real servers over sockets when given none.
 */
export class Browser {
  readonly jar = new CookieJar();
  readonly hops: Hop[] = [];
  private readonly apps: Record<string, FastifyInstance> | undefined;
  private readonly base: string;

  constructor(apps?: FastifyInstance | Record<string, FastifyInstance>, origin = ISSUER) {
    this.base = origin;
    if (apps === undefined) this.apps = undefined;
    else if (typeof (apps as FastifyInstance).inject === 'function')
      this.apps = { [new URL(origin).origin]: apps as FastifyInstance };
    else this.apps = apps as Record<string, FastifyInstance>;
  }

  /** Every live cookie's name and value. */
  get cookies(): ReadonlyMap<string, string> {
    return this.jar.cookies;
  }

  /** One request (a path is relative to the browser's origin) with the jar's cookies; remembers Set-Cookie. */
  async request(url: string | URL, init: RequestInit = {}): Promise<Page> {
    const target = new URL(url, this.base);
    const method = init.method ?? (init.form ? 'POST' : 'GET');
    const headers: Record<string, string> = { ...init.headers };
    const cookie = this.jar.header(target);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    let page: Omit<Page, 'location' | 'json' | 'method' | 'url'>;
    if (this.apps) {
      const app = this.apps[target.origin];
      if (!app) throw new Error(`no app at ${target.origin}`);
      const res = await app.inject({
        method: method as 'GET',
        url: `${target.pathname}${target.search}`,
        headers,
        ...(body === undefined ? {} : { payload: body }),
      });
      const setCookie = res.headers['set-cookie'];
      this.jar.store(target, setCookie === undefined ? [] : ([] as string[]).concat(setCookie));
      page = {
        status: res.statusCode,
        statusCode: res.statusCode,
        headers: res.headers as Page['headers'],
        body: res.body,
      };
    } else {
      const res = await fetch(target, { method, headers, body, redirect: 'manual' });
      const setCookie = res.headers.getSetCookie();
      this.jar.store(target, setCookie);
      const record: Page['headers'] = {};
      res.headers.forEach((value, name) => {
        if (name !== 'set-cookie') record[name] = value;
      });
      if (setCookie.length > 0) record['set-cookie'] = setCookie;
      page = { status: res.status, statusCode: res.status, headers: record, body: await res.text() };
    }
    this.hops.push({ method, url: target.href, status: page.status });
    const location = page.headers.location;
    return {
      ...page,
      method,
      url: target.href,
      location: typeof location === 'string' ? new URL(location, target).href : null,
      json: <T>() => JSON.parse(page.body) as T,
    };
  }

  /** GET `url`. */
  get(url: string | URL): Promise<Page> {
    return this.request(url);
  }

  /** POST a form to `url`. */
  post(url: string | URL, form: Record<string, string>): Promise<Page> {
    return this.request(url, { form });
  }

  /** POST a form to `url` (the same as post). */
  postForm(url: string | URL, form: Record<string, string>): Promise<Page> {
    return this.request(url, { form });
  }
}
