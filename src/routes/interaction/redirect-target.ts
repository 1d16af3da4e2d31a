const LOOPBACK_NAMES = new Set(['localhost', '[::1]']);

/** Whether a host name is this computer (127.0.0.0/8, ::1, localhost): a redirect any local program can catch. */
export function isLoopbackHost(hostname: string): boolean {
  return (
    LOOPBACK_NAMES.has(hostname) ||
    hostname.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) ||
    // IPv4-mapped 127.0.0.0/8, as WHATWG URL serialises it.
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname)
  );
}

/** Where the browser goes after the decision, as the page shows it. */
export function redirectTarget(redirectUri: string): { host: string; kind: 'web' | 'loopback' | 'app' } {
  const url = new URL(redirectUri);
  // RFC 8252 §7.1: a private-use scheme names an app on the device, not a host.
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { host: url.protocol.slice(0, -1), kind: 'app' };
  return { host: url.hostname, kind: isLoopbackHost(url.hostname) ? 'loopback' : 'web' };
}
