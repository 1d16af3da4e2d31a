import t from 'tap';
import { isLoopbackHost, isLoopbackUrl, isRegistrableLoopbackHost } from '../../src/lib/loopback.js';
import { isOperatorClient } from '../../src/oauth/client.js';

// One definition of "this computer" (src/lib/loopback.ts) for the consent warning, the distrust of
// remembered consent, redirect port matching and http issuers in development.
t.test('loopback hosts: 127/8, ::1, IPv4-mapped 127/8, localhost and its subdomains', async (t) => {
  for (const host of [
    'localhost',
    'LOCALHOST',
    'app.localhost',
    '127.0.0.1',
    '127.1.2.3',
    '[::1]',
    '[::ffff:7f00:1]',
  ]) {
    t.ok(isLoopbackHost(host), host);
  }
  for (const host of ['example.com', '127.0.0.1.nip.io', 'localhost.example.com', '128.0.0.1', '[::2]', '10.0.0.1']) {
    t.notOk(isLoopbackHost(host), host);
  }
  // As the WHATWG URL parser serialises hosts: the mapped form arrives compressed and in brackets.
  t.ok(isLoopbackUrl('http://[::ffff:127.0.0.1]:8080/cb'));
  t.ok(isLoopbackUrl('http://app.localhost/cb'));
  t.notOk(isLoopbackUrl('https://app.example.com/cb'));
  t.notOk(isLoopbackUrl('not a url'));
});

t.test('a native client registers http only on 127.0.0.1, [::1] or localhost (RFC 8252 §7.3, §8.3)', async (t) => {
  for (const host of ['127.0.0.1', '[::1]', 'localhost']) t.ok(isRegistrableLoopbackHost(host), host);
  for (const host of ['127.0.0.2', 'app.localhost', '[::ffff:7f00:1]', 'example.com']) {
    t.ok(isLoopbackHost(host) || host === 'example.com', `${host} is loopback or plainly not`);
    t.notOk(isRegistrableLoopbackHost(host), `${host} is not registrable`);
  }
});

t.test('only an operator-registered client is vetted (RFC 9700 §4.11.2)', async (t) => {
  t.ok(isOperatorClient({ source: 'admin' }));
  t.ok(isOperatorClient({ source: 'file' }));
  t.notOk(isOperatorClient({ source: 'registration' }));
  t.notOk(isOperatorClient({ source: 'metadata_document' }));
  t.notOk(isOperatorClient({ source: 'some-later-source' }), 'an allow-list: unknown sources are not vetted');
});
