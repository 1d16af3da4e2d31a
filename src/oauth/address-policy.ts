import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';

/**
 * Which IP addresses a server-side fetch may connect to. draft-ietf-oauth-client-id-metadata-document-02
 * §8.6: a metadata document MUST NOT be fetched from special-use addresses (RFC 6890 and the IANA
 * special-purpose registries), or any client_id URL could make this server probe its own networks.
 */

/** One special-purpose range: the first `bits` bits of `prefix` (bytes), and what it is. */
interface Range {
  prefix: number[];
  bits: number;
  name: string;
}

function v4(cidr: string, name: string): Range {
  const [address, bits] = cidr.split('/') as [string, string];
  return { prefix: address.split('.').map(Number), bits: Number(bits), name };
}

function v6(cidr: string, name: string): Range {
  const [address, bits] = cidr.split('/') as [string, string];
  return { prefix: parseIPv6(address)!, bits: Number(bits), name };
}

// IANA IPv4 Special-Purpose Address Registry (RFC 6890 and later), plus multicast and the reserved block.
const IPV4_RANGES: readonly Range[] = [
  v4('0.0.0.0/8', 'unspecified ("this network", RFC 791)'),
  v4('10.0.0.0/8', 'private (RFC 1918)'),
  v4('100.64.0.0/10', 'shared address space / CGNAT (RFC 6598)'),
  v4('127.0.0.0/8', 'loopback (RFC 1122)'),
  v4('169.254.0.0/16', 'link-local (RFC 3927)'),
  v4('172.16.0.0/12', 'private (RFC 1918)'),
  v4('192.0.0.0/24', 'IETF protocol assignments (RFC 6890)'),
  v4('192.0.2.0/24', 'documentation (RFC 5737)'),
  v4('192.31.196.0/24', 'AS112 (RFC 7535)'),
  v4('192.52.193.0/24', 'AMT (RFC 7450)'),
  v4('192.88.99.0/24', '6to4 relay anycast (RFC 7526)'),
  v4('192.168.0.0/16', 'private (RFC 1918)'),
  v4('192.175.48.0/24', 'AS112 direct delegation (RFC 7534)'),
  v4('198.18.0.0/15', 'benchmarking (RFC 2544)'),
  v4('198.51.100.0/24', 'documentation (RFC 5737)'),
  v4('203.0.113.0/24', 'documentation (RFC 5737)'),
  v4('224.0.0.0/4', 'multicast (RFC 5771)'),
  v4('240.0.0.0/4', 'reserved (RFC 1112), including broadcast'),
];

// IANA IPv6 Special-Purpose Address Registry. Ranges that embed an IPv4 address are handled separately.
const IPV6_RANGES: readonly Range[] = [
  v6('::/128', 'unspecified (RFC 4291)'),
  v6('::1/128', 'loopback (RFC 4291)'),
  v6('64:ff9b:1::/48', 'local-use IPv4/IPv6 translation (RFC 8215)'),
  v6('100::/64', 'discard-only (RFC 6666)'),
  v6('2001::/23', 'IETF protocol assignments, including Teredo (RFC 2928, RFC 4380)'),
  v6('2001:db8::/32', 'documentation (RFC 3849)'),
  v6('3fff::/20', 'documentation (RFC 9637)'),
  v6('5f00::/16', 'segment routing SIDs (RFC 9602)'),
  v6('fc00::/7', 'unique-local (RFC 4193)'),
  v6('fe80::/10', 'link-local (RFC 4291)'),
  v6('fec0::/10', 'site-local, deprecated (RFC 3879)'),
  v6('ff00::/8', 'multicast (RFC 4291)'),
];

/** The 16 bytes of an IPv6 address (dotted-quad tail and zone id allowed), or null when it is not one. */
export function parseIPv6(text: string): number[] | null {
  const address = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!isIPv6(address)) return null;
  let head = address;
  let tail: number[] = [];
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) {
    tail = dotted[1]!.split('.').map(Number);
    head = address.slice(0, dotted.index);
    // "::1.2.3.4" and "1::1.2.3.4": the colon before the tail belonged to a "::".
    if (head.endsWith(':')) head = `${head}:`;
  }
  const groupsWanted = 8 - tail.length / 2;
  const [left, right] = head.includes('::') ? (head.split('::') as [string, string]) : [head, undefined];
  const parts = (s: string) => (s === '' ? [] : s.split(':'));
  const leftGroups = parts(left);
  const rightGroups = right === undefined ? [] : parts(right);
  const missing = groupsWanted - leftGroups.length - rightGroups.length;
  if (missing < 0 || (right === undefined && missing !== 0)) return null;
  const groups = [...leftGroups, ...Array<string>(missing).fill('0'), ...rightGroups].map((g) => parseInt(g, 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  return [...bytes, ...tail];
}

function matches(bytes: readonly number[], range: Range): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i += 1, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((range.prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

function ipv4Problem(bytes: readonly number[]): string | null {
  return IPV4_RANGES.find((range) => matches(bytes, range))?.name ?? null;
}

/**
 * Why an address is special-use (a short name of its range), or null when it is a public unicast
 * address. IPv4 addresses embedded in IPv6 (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64
 * 64:ff9b::/96, 6to4) are judged by their IPv4 address, so `::ffff:127.0.0.1` is loopback. Anything unparseable is refused.
 */
export function specialUseAddress(address: string): string | null {
  if (isIPv4(address)) return ipv4Problem(address.split('.').map(Number));
  const bytes = parseIPv6(address);
  if (!bytes) return 'not an IP address';
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  // ::ffff:0:0/96 IPv4-mapped (RFC 4291 §2.5.5.2).
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) {
    const inner = ipv4Problem(bytes.slice(12));
    return inner ? `IPv4-mapped ${inner}` : null;
  }
  // ::ffff:0:0:0/96 IPv4-translated (RFC 2765 §2.1, used by SIIT): it too reaches the IPv4 address it embeds.
  if (zeros(0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && zeros(10, 12)) {
    const inner = ipv4Problem(bytes.slice(12));
    return inner ? `IPv4-translated ${inner}` : null;
  }
  // ::/96 IPv4-compatible (deprecated, RFC 4291 §2.5.5.1); :: and ::1 themselves are listed below.
  if (zeros(0, 12) && !zeros(12, 15)) return 'IPv4-compatible IPv6, deprecated (RFC 4291)';
  // 64:ff9b::/96 NAT64 well-known prefix (RFC 6052): the IPv4 address it translates to decides.
  if (matches(bytes, v6('64:ff9b::/96', ''))) {
    const inner = ipv4Problem(bytes.slice(12));
    return inner ? `NAT64 ${inner}` : null;
  }
  // 2002::/16 6to4 (RFC 3056): the embedded IPv4 address of the relay decides.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) {
    const inner = ipv4Problem(bytes.slice(2, 6));
    return inner ? `6to4 ${inner}` : null;
  }
  return IPV6_RANGES.find((range) => matches(bytes, range))?.name ?? null;
}

/**
 * A DNS lookup for a guarded server-side request that fails unless every resolved address is allowed:
 * the connection can then only go to an address that was checked, so a rebinding DNS answer cannot slip a
 * private address past a pre-resolution check. `refusal` says why an address is refused (null: allowed);
 * `refused` turns that reason into the caller's error.
 */
export function guardedLookup(
  refusal: (address: string) => string | null,
  refused: (why: string) => Error,
): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (addresses.length === 0)
        return callback(Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' }), '', 0);
      for (const { address } of addresses) {
        const problem = refusal(address);
        if (problem) return callback(refused(problem), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      return callback(null, first.address, first.family);
    });
  };
}
