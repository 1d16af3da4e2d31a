/**
 * The one definition of "this computer" for Gatehouse: a host name any local program can listen on.
 * 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (as the WHATWG URL parser serialises them), `localhost`
 * and its subdomains (RFC 6761 §6.3 reserves them for loopback). Used for loopback redirect URIs
 * (RFC 8252 §7.3), the consent page's warning, distrust of remembered consent, and http issuers in
 * development, so all of them agree.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host)
  );
}

/** Whether a URL (absolute, any scheme) names a loopback host; false for anything that does not parse. */
export function isLoopbackUrl(value: string): boolean {
  try {
    return isLoopbackHost(new URL(value).hostname);
  } catch {
    return false;
  }
}

/**
 * The loopback hosts a native client may register an http redirect URI on: the loopback IP literals
 * RFC 8252 §7.3 names (127.0.0.1, [::1]) and `localhost` (§8.3 discourages it, but clients use it). A
 * narrower policy on top of isLoopbackHost, not another definition of loopback: other 127/8 addresses and
 * `*.localhost` names are this computer too (so they are distrusted like loopback elsewhere), but whether
 * a `*.localhost` name stays off DNS depends on the resolver, and nothing needs them registered.
 */
export function isRegistrableLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === '127.0.0.1' || host === '[::1]' || host === 'localhost';
}
