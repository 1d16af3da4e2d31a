import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildDemoClient } from '../examples/demo-client/app.js';
import { buildHostApp } from '../examples/host-app/app.js';
import { startResourceServer } from '../examples/resource-server/app.js';
import { buildApp } from '../src/app.js';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { openDatabase } from '../src/db/connect.js';
import { migrateUp } from '../src/db/migrate.js';

/**
 * `npm run demo`: Gatehouse (embedded PGlite), the example host app, the example resource server and a
 * demo client, all on 127.0.0.1, wired to each other. Prints the URL to open; stops on SIGINT/SIGTERM.
 *
 * Environment: DEMO_PORT_BASE (4000: Gatehouse, +1 host app, +2 API, +3 client), or each of
 * DEMO_GATEHOUSE_PORT, DEMO_HOST_PORT, DEMO_API_PORT, DEMO_CLIENT_PORT; DEMO_DATA_DIR (./data/demo);
 * LOG_LEVEL for Gatehouse (warn).
 */

const HOST = '127.0.0.1';
const HOST_ID = 'demo-host';
const CLIENT_ID = 'demo-client';
const SCOPES = { read: 'Read your data through the demo API', write: 'Change your data through the demo API' };

function port(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number`);
  return n;
}

/** A secret kept in the data directory, so keys encrypted under it survive a restart of the demo. */
async function persistentSecret(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32).toString('base64url');
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

async function main(): Promise<void> {
  const base = port('DEMO_PORT_BASE', 4000);
  const ports = {
    gatehouse: port('DEMO_GATEHOUSE_PORT', base),
    host: port('DEMO_HOST_PORT', base + 1),
    api: port('DEMO_API_PORT', base + 2),
    client: port('DEMO_CLIENT_PORT', base + 3),
  };
  const dataDir = resolve(process.env.DEMO_DATA_DIR || 'data/demo');
  await mkdir(dataDir, { recursive: true });

  const issuer = `http://${HOST}:${ports.gatehouse}`;
  const hostUrl = `http://${HOST}:${ports.host}`;
  const clientUrl = `http://${HOST}:${ports.client}`;
  // A new handshake secret each run: nothing signed with it outlives a few minutes.
  const handshakeSecret = randomBytes(32).toString('base64url');

  // Started in dependency order, stopped in reverse.
  const running: Array<{ name: string; close: () => Promise<unknown> }> = [];
  const stop = async () => {
    for (const { name, close } of running.reverse()) {
      try {
        await close();
      } catch (err) {
        process.stderr.write(`demo: stopping ${name} failed: ${(err as Error).message}\n`);
      }
    }
    running.length = 0;
  };
  let stopping: Promise<void> | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopping ??= stop().then(() => {
        process.stdout.write('demo: stopped\n');
      });
    });
  }

  try {
    // 1. The resource server: it needs only the issuer (it fetches the JWKS on the first token).
    const api = await startResourceServer({ issuer, host: HOST, port: ports.api, path: '/mcp', requiredScope: 'read' });
    running.push({ name: 'resource server', close: () => api.close() });

    // 2. Gatehouse, with the demo client registered through CLIENTS_FILE (applied at start, idempotently).
    const clientsFile = join(dataDir, 'clients.json');
    const demoClient = {
      client_id: CLIENT_ID,
      name: 'Gatehouse demo client',
      // A public client on a loopback redirect: a native app in OAuth terms (RFC 8252 §7.3).
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [`${clientUrl}/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      scopes: ['read', 'write'],
      resources: [api.resource],
      // OpenID Connect logout: "Sign out everywhere" comes back here, and Gatehouse POSTs logout tokens to
      // the back-channel URI when the user's session ends (docs/openid-connect.md, "Logout").
      post_logout_redirect_uris: [`${clientUrl}/signed-out`],
      backchannel_logout_uri: `${clientUrl}/backchannel-logout`,
    };
    await writeFile(clientsFile, `${JSON.stringify({ clients: [demoClient] }, null, 2)}\n`);
    const { config } = loadConfig({
      NODE_ENV: 'development',
      ISSUER: issuer,
      HOST,
      PORT: String(ports.gatehouse),
      DATA_DIR: join(dataDir, 'pglite'),
      KEY_ENCRYPTION_SECRET: await persistentSecret(join(dataDir, 'key-encryption-secret')),
      SIGN_IN_URL: `${hostUrl}/login`,
      HOST_ID,
      HANDSHAKE_SECRET: handshakeSecret,
      SCOPES: JSON.stringify(SCOPES),
      RESOURCES: api.resource,
      CLIENTS_FILE: clientsFile,
      // The demo client's back-channel logout URI is on 127.0.0.1: a development-only allowance.
      BACKCHANNEL_LOGOUT_ALLOW_PRIVATE_ADDRESSES: 'true',
      LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
      LOG_PRETTY: process.env.LOG_PRETTY || 'false',
    });
    // Opened and migrated before the app is built: creating a fresh PGlite database can take longer than
    // Fastify's plugin start timeout on a busy machine. The demo then closes it after the app.
    const database = await openDatabase(config, { owner: 'npm run demo' });
    running.push({ name: 'database', close: () => database.close() });
    await migrateUp(database.root, config.database.schema);
    const gatehouse = await buildApp(config, { database });
    running.push({ name: 'Gatehouse', close: () => gatehouse.close() });
    await gatehouse.listen({ host: HOST, port: ports.gatehouse });

    // 3. The host app that signs users in for Gatehouse.
    // Signing out at the host signs the user out of Gatehouse everywhere (docs/handshake.md, "Signing out").
    const host = await buildHostApp({
      gatehouseIssuer: issuer,
      hostId: HOST_ID,
      handshakeSecret,
      signOutAtGatehouse: true,
    });
    running.push({ name: 'host app', close: () => host.close() });
    await host.listen({ host: HOST, port: ports.host });

    // 4. The demo client.
    const client: FastifyInstance = await buildDemoClient({
      issuer,
      clientId: CLIENT_ID,
      redirectUri: `${clientUrl}/callback`,
      resource: api.resource,
      // openid: the demo shows the ID token's claims and can sign out everywhere.
      scope: 'openid profile email read',
    });
    running.push({ name: 'demo client', close: () => client.close() });
    await client.listen({ host: HOST, port: ports.client });

    process.stdout.write(
      [
        '',
        'Gatehouse demo is running:',
        `  Gatehouse (authorization server)  ${issuer}`,
        `  Host app (sign-in)                ${hostUrl}   users: alice / alice-password, bob / bob-password`,
        `  Resource server (API)             ${api.resource}`,
        `  Demo client                       ${clientUrl}`,
        `  Data                              ${dataDir}`,
        '',
        `Open ${clientUrl}/ in your browser. Press Ctrl+C to stop.`,
        '',
      ].join('\n'),
    );
  } catch (err) {
    await stop();
    throw err;
  }
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : ((err as Error).stack ?? String(err));
  process.stderr.write(`demo: ${message}\n`);
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
    process.stderr.write('demo: a port is taken; set DEMO_PORT_BASE to use other ports\n');
  process.exitCode = 1;
});
