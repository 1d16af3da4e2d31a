import { createServer } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/** A port that was free a moment ago on 127.0.0.1 (for servers whose URL must be known before they listen). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * A browser's cookie jar for apps on one host: like a browser, it does not separate cookies by port, so
 * the example apps and Gatehouse on 127.0.0.1 share it (and their cookie names must not clash).
 */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Remembers Set-Cookie headers (raw strings). */
  store(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** A browser over app.inject for several apps, each reached by its origin. */
export class InjectBrowser {
  readonly jar = new CookieJar();
  constructor(private readonly apps: Record<string, FastifyInstance>) {}

  private route(url: string): { app: FastifyInstance; path: string } {
    const parsed = new URL(url);
    const app = this.apps[parsed.origin];
    if (!app) throw new Error(`no app at ${parsed.origin}`);
    return { app, path: `${parsed.pathname}${parsed.search}` };
  }

  private remember(res: LightMyRequestResponse): LightMyRequestResponse {
    const set = res.headers['set-cookie'];
    this.jar.store(set === undefined ? [] : Array.isArray(set) ? set : [String(set)]);
    return res;
  }

  async get(url: string): Promise<LightMyRequestResponse> {
    const { app, path } = this.route(url);
    return this.remember(await app.inject({ method: 'GET', url: path, headers: { cookie: this.jar.header() } }));
  }

  async post(url: string, form: Record<string, string>): Promise<LightMyRequestResponse> {
    const { app, path } = this.route(url);
    return this.remember(
      await app.inject({
        method: 'POST',
        url: path,
        headers: { cookie: this.jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams(form).toString(),
      }),
    );
  }
}

/** A browser over real sockets (fetch, redirects followed by hand so each hop can be checked). */
export class SocketBrowser {
  readonly jar = new CookieJar();

  async request(
    url: string,
    form?: Record<string, string>,
  ): Promise<{ status: number; location: string | null; body: string; headers: Headers; url: string }> {
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: this.jar.header(), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    this.jar.store(res.headers.getSetCookie());
    const location = res.headers.get('location');
    return {
      status: res.status,
      location: location === null ? null : new URL(location, url).href,
      body: await res.text(),
      headers: res.headers,
      url,
    };
  }
}

/** The value of a hidden form field. */
export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match) throw new Error(`no ${name} field`);
  return match[1]!
    .replaceAll('&amp;', '&')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>');
}
