import { buildHostApp } from './app.js';

/**
 * Runs the example host app. Environment: GATEHOUSE_ISSUER, HOST_ID and HANDSHAKE_SECRET (the same values
 * Gatehouse has as ISSUER, HOST_ID and HANDSHAKE_SECRET), PORT (4001), HOST (127.0.0.1), SECURE_COOKIES.
 */
function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`host-app: ${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const app = await buildHostApp({
  gatehouseIssuer: required('GATEHOUSE_ISSUER'),
  hostId: process.env.HOST_ID || 'host',
  handshakeSecret: required('HANDSHAKE_SECRET'),
  secureCookies: process.env.SECURE_COOKIES === 'true',
  logger: true,
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

await app.listen({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 4001) });
