import t from 'tap';
import { parseIPv6, specialUseAddress } from '../../src/oauth/address-policy.js';

t.test('public unicast addresses are allowed', async (t) => {
  for (const address of [
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '192.169.0.1',
    '223.255.255.255',
    '2606:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '::ffff:0:8.8.8.8',
    '64:ff9b::8.8.8.8',
    '2002:0808:0808::1',
  ]) {
    t.equal(specialUseAddress(address), null, address);
  }
});

t.test('special-use IPv4 ranges are refused, edges included', async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['0.0.0.0', /unspecified/],
    ['0.255.255.255', /unspecified/],
    ['10.0.0.0', /private/],
    ['10.255.255.255', /private/],
    ['100.64.0.0', /CGNAT/],
    ['100.127.255.255', /CGNAT/],
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['169.254.169.254', /link-local/],
    ['172.16.0.0', /private/],
    ['172.31.255.255', /private/],
    ['192.0.0.8', /IETF/],
    ['192.0.2.1', /documentation/],
    ['192.168.0.1', /private/],
    ['198.18.0.1', /benchmarking/],
    ['198.19.255.255', /benchmarking/],
    ['198.51.100.7', /documentation/],
    ['203.0.113.9', /documentation/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.255', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /reserved/],
  ];
  for (const [address, reason] of refused) t.match(specialUseAddress(address), reason, address);
  t.equal(specialUseAddress('172.15.255.255'), null, 'just below 172.16/12');
  t.equal(specialUseAddress('100.63.255.255'), null, 'just below 100.64/10');
  t.equal(specialUseAddress('198.20.0.0'), null, 'just above 198.18/15');
});

t.test('special-use IPv6 ranges are refused, including IPv4 embedded in IPv6', async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['::', /unspecified/],
    ['::1', /loopback/],
    ['0:0:0:0:0:0:0:1', /loopback/],
    ['::ffff:127.0.0.1', /IPv4-mapped loopback/],
    ['::ffff:7f00:1', /IPv4-mapped loopback/],
    ['::FFFF:10.0.0.1', /IPv4-mapped private/],
    ['::ffff:a9fe:a9fe', /IPv4-mapped link-local/],
    ['::ffff:0.0.0.0', /IPv4-mapped unspecified/],
    ['::ffff:0:127.0.0.1', /IPv4-translated loopback/],
    ['::ffff:0:7f00:1', /IPv4-translated loopback/],
    ['0:0:0:0:ffff:0:a00:1', /IPv4-translated private/],
    ['::ffff:0:169.254.169.254', /IPv4-translated link-local/],
    ['::ffff:0:0.0.0.0', /IPv4-translated unspecified/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['64:ff9b::127.0.0.1', /NAT64 loopback/],
    ['64:ff9b::a00:1', /NAT64 private/],
    ['64:ff9b:1::1', /translation/],
    ['2002:7f00:0001::1', /6to4 loopback/],
    ['2002:c0a8:0101::1', /6to4 private/],
    ['2001::1', /Teredo/],
    ['2001:db8::1', /documentation/],
    ['3fff::1', /documentation/],
    ['100::1', /discard/],
    ['fc00::1', /unique-local/],
    ['fdff:ffff::1', /unique-local/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['febf::1', /link-local/],
    ['fec0::1', /site-local/],
    ['ff02::1', /multicast/],
    ['[::1]', /loopback/],
  ];
  for (const [address, reason] of refused) t.match(specialUseAddress(address), reason, address);
  t.equal(specialUseAddress('fbff::1'), null, 'just below fc00::/7');
  t.equal(specialUseAddress('2001:200::1'), null, 'just above 2001::/23');
});

t.test('anything that is not an IP address is refused', async (t) => {
  for (const value of ['', 'localhost', 'example.com', '1.2.3', '1.2.3.256', '::g', '1:2:3:4:5:6:7:8:9'])
    t.equal(specialUseAddress(value), 'not an IP address', JSON.stringify(value));
});

t.test('parseIPv6 expands every form to 16 bytes', async (t) => {
  t.same(parseIPv6('::1'), [...Array(15).fill(0), 1]);
  t.same(parseIPv6('1::1.2.3.4'), [0, 1, ...Array(10).fill(0), 1, 2, 3, 4]);
  t.same(parseIPv6('::ffff:1.2.3.4'), [...Array(10).fill(0), 0xff, 0xff, 1, 2, 3, 4]);
  t.same(parseIPv6('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  t.equal(parseIPv6('1.2.3.4'), null);
});
