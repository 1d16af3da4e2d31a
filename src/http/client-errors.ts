import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** How long a refused connection may take to read our answer and close before it is cut. */
const LINGER_MS = 2000;

/** The status and OAuth error description for a request Node's HTTP parser or timers gave up on. */
function classify(code: string | undefined): { status: number; description: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return { status: 408, description: 'the request was not received in time; send it again' };
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, description: 'the request headers are too large' };
  return { status: 400, description: 'malformed HTTP request' };
}

/**
 * Fastify's `clientErrorHandler`, for what never reaches a route: a request (headers or body) slower than
 * REQUEST_/HEADERS_TIMEOUT_SECONDS, headers too large, or bytes that are not HTTP. The answer is the usual
 * OAuth error JSON (RFC 6749 §5.2 `invalid_request`: the request is malformed or incomplete) rather than
 * Fastify's own shape, with `Connection: close`; then the connection is ended, not reset, so a keep-alive
 * client reads the whole answer and sees the close instead of a reset it could mistake for a lost answer.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection, or one already closed, has no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, description } = classify(err.code);
  this.log.debug({ err: { code: err.code, message: err.message } }, 'client connection error');
  // Node's own rule: answer only when no response has started on this socket, else just close it.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: 'invalid_request', error_description: description });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      'Cache-Control: no-store\r\n' +
      'Connection: close\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // A client that never reads or closes its side must not keep the socket.
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
