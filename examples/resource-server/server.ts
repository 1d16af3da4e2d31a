import { startResourceServer } from './app.js';

/**
 * Runs the example resource server. Environment: GATEHOUSE_ISSUER (Gatehouse's ISSUER), RESOURCE_URL (this
 * API's resource identifier as clients see it, one of Gatehouse's RESOURCES; its path is the protected
 * path), JWKS_URI (when Gatehouse's keys are reached by another URL than the issuer's, e.g. inside a
 * container network), REQUIRED_SCOPE (read), PORT (4002), HOST (127.0.0.1).
 */
const issuer = process.env.GATEHOUSE_ISSUER;
if (!issuer) {
  process.stderr.write('resource-server: GATEHOUSE_ISSUER is required\n');
  process.exit(2);
}
const resource = process.env.RESOURCE_URL || undefined;

const server = await startResourceServer({
  issuer,
  host: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 4002),
  path: resource ? new URL(resource).pathname : '/mcp',
  requiredScope: process.env.REQUIRED_SCOPE ?? 'read',
  logger: true,
  ...(resource ? { resource } : {}),
  ...(process.env.JWKS_URI ? { jwksUri: process.env.JWKS_URI } : {}),
});
server.app.log.info({ resource: server.resource }, `resource server ready at ${server.resource}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
