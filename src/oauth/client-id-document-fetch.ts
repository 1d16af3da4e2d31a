import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { DomainError } from '../lib/errors.js';
import { guardedLookup, specialUseAddress } from './address-policy.js';

/**
 * Why a client-id document could not be fetched. The message is safe to show to anyone. `detail` is set
 * only for a connection-level failure (no answer, refused, reset, TLS, DNS): it goes to the log, never to
 * the error page, which would otherwise tell anyone which hosts and ports this server can reach.
 */
export class ClientIdDocumentFetchError extends DomainError {
  constructor(reason: string, detail?: string) {
    super('unavailable', reason, detail === undefined ? {} : { detail });
  }
}

/** What the error page says for every connection-level failure. */
export const NOT_FETCHED = 'the document could not be fetched';

/** How client-id documents are fetched (CIMD_* settings). */
export interface FetchPolicy {
  timeoutMs: number;
  maxBytes: number;
  /** Development only: connect to special-use addresses too. */
  allowPrivateAddresses: boolean;
  /** Extra trusted CA certificates (PEM), added to Node's root store; null for the roots alone. */
  ca: string | null;
}

/** A fetched client-id document: its body and the response headers that decide caching. */
export interface FetchedDocument {
  body: string;
  headers: IncomingHttpHeaders;
}

// draft-ietf-oauth-client-id-metadata-document-02 §4: application/json or application/<AS-defined>+json.
const JSON_MEDIA = /^application\/([a-z0-9!#$&^_.-]+\+)?json$/;

function refusal(address: string, policy: FetchPolicy): string | null {
  if (policy.allowPrivateAddresses) return null;
  const special = specialUseAddress(address);
  return special
    ? `the host resolves to a special-use address (${special}), which is never fetched (draft section 8.6)`
    : null;
}

/** A connection-level failure: shown as NOT_FETCHED, detailed in `detail` (a refused address stays shown). */
function networkFailure(err: unknown): ClientIdDocumentFetchError {
  if (err instanceof ClientIdDocumentFetchError) return err;
  return new ClientIdDocumentFetchError(NOT_FETCHED, networkDetail(err));
}

function networkDetail(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  if (code === 'ECONNRESET') return 'the connection was reset';
  if (
    typeof code === 'string' &&
    (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL') || code === 'EPROTO')
  ) {
    return `the TLS connection failed (${code})`;
  }
  return code ? `the request failed (${code})` : 'the request failed';
}

/**
 * Fetches a client-id document over https with the safeguards of
 * draft-ietf-oauth-client-id-metadata-document-02: 200 only, redirects never followed (§5), a JSON
 * content type (§4), at most `maxBytes` read (§8.7), no special-use addresses (§8.6, checked on every
 * resolved address and again on the connected socket), all within `timeoutMs`. Throws ClientIdDocumentFetchError.
 */
export function fetchClientIdDocument(url: URL, policy: FetchPolicy): Promise<FetchedDocument> {
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'https:') return reject(new ClientIdDocumentFetchError('only https URLs are fetched'));
    // Node connects to an IP literal without any lookup, so the literal is checked here.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const problem = refusal(host, policy);
      if (problem)
        return reject(new ClientIdDocumentFetchError(problem.replace('the host resolves to', 'the host is')));
    }
    let settled = false;
    const fail = (reason: string | ClientIdDocumentFetchError) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(typeof reason === 'string' ? new ClientIdDocumentFetchError(reason) : reason);
    };
    const req = request(url, {
      method: 'GET',
      agent: false,
      lookup: guardedLookup(
        (address) => refusal(address, policy),
        (why) => new ClientIdDocumentFetchError(why),
      ),
      ...(policy.ca ? { ca: [...rootCertificates, policy.ca] } : {}),
      headers: {
        accept: 'application/json',
        'accept-encoding': 'identity',
        'user-agent': 'Gatehouse (client metadata document fetch)',
      },
    });
    // A timeout is connection-level too: shown, it would tell a filtered port from a closed one.
    const timer = setTimeout(
      () => fail(new ClientIdDocumentFetchError(NOT_FETCHED, `no complete answer within ${policy.timeoutMs} ms`)),
      policy.timeoutMs,
    );
    timer.unref();
    req.on('socket', (socket) => {
      socket.once('connect', () => {
        // Belt and braces beside the lookup: the address actually connected to.
        if (!socket.remoteAddress)
          return fail(
            new ClientIdDocumentFetchError(NOT_FETCHED, 'the connection closed before its address was known'),
          );
        const problem = refusal(socket.remoteAddress, policy);
        if (problem) fail(problem.replace('the host resolves to', 'the connection went to'));
      });
    });
    req.on('error', (err) => fail(networkFailure(err)));
    req.on('close', () => clearTimeout(timer));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400)
        return fail(`the server answered ${status} (a redirect), and redirects are not followed (draft section 5)`);
      if (status !== 200) return fail(`the server answered ${status}, not 200 (draft section 5)`);
      const media = String(res.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      if (!JSON_MEDIA.test(media))
        return fail(
          `the content type is ${media ? `"${media.slice(0, 60)}"` : 'missing'}, not application/json (draft section 4)`,
        );
      const encoding = String(res.headers['content-encoding'] ?? 'identity')
        .trim()
        .toLowerCase();
      if (encoding !== 'identity' && encoding !== '')
        return fail(`the response is ${encoding.slice(0, 20)}-encoded; only identity is read`);
      const declared = Number(res.headers['content-length']);
      const tooLarge = `the document is larger than ${policy.maxBytes} bytes (draft section 8.7)`;
      if (Number.isFinite(declared) && declared > policy.maxBytes) return fail(tooLarge);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > policy.maxBytes) return fail(tooLarge);
        chunks.push(chunk);
      });
      res.on('error', (err) => fail(networkFailure(err)));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
      });
    });
    req.end();
  });
}
