import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, specialUseAddress } from './address-policy.js';

/** How logout tokens are POSTed (BACKCHANNEL_LOGOUT_* settings). */
export interface LogoutPostPolicy {
  timeoutMs: number;
  /** Connect to private, loopback and other special-use addresses too (off by default). */
  allowPrivateAddresses: boolean;
}

/** The outcome of one POST: delivered, or why not (safe to log: a status or a network reason, never the token). */
export type LogoutPostResult = { ok: true } | { ok: false; reason: string };

/** Thrown by the guarded lookup; its message is the reason. */
class AddressRefused extends Error {}

function refusal(address: string, policy: LogoutPostPolicy): string | null {
  if (policy.allowPrivateAddresses) return null;
  const special = specialUseAddress(address);
  return special
    ? `the host resolves to a special-use address (${special}); set BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES to allow it`
    : null;
}

function networkReason(err: unknown): string {
  if (err instanceof AddressRefused) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ? `the request failed (${code})` : 'the request failed';
}

/**
 * POSTs a logout token to a client's backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0 §2.5):
 * `logout_token` as an application/x-www-form-urlencoded body; 200 and 204 are success (§2.8); redirects
 * are not followed (§2.5), nothing of the answer is read but its status; special-use addresses are
 * refused unless the operator allows them (as client-id document fetches are: the literal, every
 * resolved address and the connected socket are checked), all within `timeoutMs`. Never throws.
 */
export function postLogoutToken(uri: string, logoutToken: string, policy: LogoutPostPolicy): Promise<LogoutPostResult> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return resolve({ ok: false, reason: 'the backchannel_logout_uri is not a URL' });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      return resolve({ ok: false, reason: 'the backchannel_logout_uri is not http(s)' });
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const problem = refusal(host, policy);
      if (problem) return resolve({ ok: false, reason: problem.replace('the host resolves to', 'the host is') });
    }
    const body = new URLSearchParams({ logout_token: logoutToken }).toString();
    let settled = false;
    const finish = (result: LogoutPostResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      agent: false,
      lookup: guardedLookup(
        (address) => refusal(address, policy),
        (why) => new AddressRefused(why),
      ),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
        accept: 'application/json',
        'user-agent': 'Gatehouse (back-channel logout)',
      },
    });
    const timer = setTimeout(
      () => finish({ ok: false, reason: `no answer within ${policy.timeoutMs} ms` }),
      policy.timeoutMs,
    );
    timer.unref();
    req.on('socket', (socket) => {
      socket.once('connect', () => {
        // Belt and braces beside the lookup: the address actually connected to.
        const problem = socket.remoteAddress ? refusal(socket.remoteAddress, policy) : 'no remote address';
        if (problem) finish({ ok: false, reason: problem.replace('the host resolves to', 'the connection went to') });
      });
    });
    req.on('error', (err) => finish({ ok: false, reason: networkReason(err) }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      // §2.8: 200 OK (204 is accepted too: no body is expected); anything else, redirects included, failed.
      finish(status === 200 || status === 204 ? { ok: true } : { ok: false, reason: `the client answered ${status}` });
    });
    req.end(body);
  });
}
