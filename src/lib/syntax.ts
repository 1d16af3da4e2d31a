/**
 * Syntax from the RFCs that both configuration (validating SCOPES and RESOURCES at start) and the
 * protocol code (validating requests and client metadata) check, defined once here so they agree.
 */

/** RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Canonical form of an http(s) URL for comparison: lower-case scheme and host, no default port, no empty trailing slash, no fragment. */
export function canonicalUrl(value: string): string {
  const url = new URL(value);
  url.hash = '';
  // WHATWG URL already lower-cases scheme and host and drops default ports; only a bare "/" path is dropped.
  return url.pathname === '/' && !url.search ? url.href.slice(0, -1) : url.href;
}
