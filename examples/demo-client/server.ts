import { buildDemoClient } from './app.js';

/**
 * Runs the demo client. Environment: GATEHOUSE_ISSUER (as the browser reaches it), GATEHOUSE_URL (where
 * this server reaches Gatehouse, when that differs), CLIENT_ID (demo-client), REDIRECT_URI
 * (http://127.0.0.1:<PORT>/callback), RESOURCE_URL (the API's resource identifier), API_URL (where this
 * server reaches the API, when that differs), SCOPE (read; add `openid profile email` to see an ID token's claims), PORT (4003), HOST (127.0.0.1).
 */
const issuer = process.env.GATEHOUSE_ISSUER;
const resource = process.env.RESOURCE_URL;
if (!issuer || !resource) {
  process.stderr.write('demo-client: GATEHOUSE_ISSUER and RESOURCE_URL are required\n');
  process.exit(2);
}
const port = Number(process.env.PORT || 4003);

const app = await buildDemoClient({
  issuer,
  clientId: process.env.CLIENT_ID || 'demo-client',
  redirectUri: process.env.REDIRECT_URI || `http://127.0.0.1:${port}/callback`,
  resource,
  scope: process.env.SCOPE || 'read',
  logger: true,
  ...(process.env.GATEHOUSE_URL ? { backchannelUrl: process.env.GATEHOUSE_URL } : {}),
  ...(process.env.API_URL ? { apiUrl: process.env.API_URL } : {}),
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

await app.listen({ host: process.env.HOST || '127.0.0.1', port });
