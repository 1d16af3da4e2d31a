import { createServer } from 'node:net';

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

// The cookie jar and browser are the one test Browser (test/kit/browser.ts): over app.inject for several
// apps by origin, or over sockets when given none.
export { Browser as InjectBrowser, Browser as SocketBrowser, CookieJar } from '../kit/browser.js';

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
