import { buildHostApp } from './app.js';

/**
 * Runs the example host app. Environment: GATEHOUSE_ISSUER, HOST_ID and HANDSHAKE_SECRET (the same values
 * Gatehouse has as ISSUER, HOST_ID and HANDSHAKE_SECRET), PORT (4001), HOST (127.0.0.1), SECURE_COOKIES
 * (`true` behind https: Secure cookies with the `__Host-` prefix), SIGN_OUT_AT_GATEHOUSE (`true`: signing
 * out here ends the user's Gatehouse sessions too, and the apps they signed in to are told; Gatehouse must
 * be reachable at GATEHOUSE_ISSUER from here).
 */
const gatehouseIssuer = process.env.GATEHOUSE_ISSUER;
const handshakeSecret = process.env.HANDSHAKE_SECRET;
if (!gatehouseIssuer || !handshakeSecret) {
  process.stderr.write('host-app: GATEHOUSE_ISSUER and HANDSHAKE_SECRET are required\n');
  process.exit(2);
}

const app = await buildHostApp({
  gatehouseIssuer,
  hostId: process.env.HOST_ID || 'host',
  handshakeSecret,
  secureCookies: process.env.SECURE_COOKIES === 'true',
  signOutAtGatehouse: process.env.SIGN_OUT_AT_GATEHOUSE === 'true',
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
