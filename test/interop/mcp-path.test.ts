import { randomInt } from 'node:crypto';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { type RunningResourceServer, startResourceServer } from '../../examples/resource-server/app.js';
import { freePort, listenGatehouse } from '../fixtures/listen.js';
import { authorizationRequest, UserAgent } from '../fixtures/user-agent.js';

/**
 * The MCP client path (MCP authorization spec; RFC 9728, RFC 8414, RFC 7591, RFC 7636, RFC 8707), with
 * the example resource server (examples/resource-server) as the MCP server and oauth4webapi for the
 * protocol steps. The client knows only the server's URL: it calls it, reads the 401's
 * `WWW-Authenticate: Bearer resource_metadata="…"`, fetches that RFC 9728 document, discovers the
 * authorization server it names, registers, authorizes with PKCE and `resource` = the server's URL, and
 * calls the server with a token whose `aud` is exactly that resource.
 *
 * No TLS here: oauth4webapi's documented development option `[oauth.allowInsecureRequests]` permits
 * the `http://127.0.0.1` URLs of Gatehouse and the resource server; no other check is relaxed.
 */

const HTTP = { [oauth.allowInsecureRequests]: true } as const;
const CLAUDE_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';

interface Stack {
  issuer: string;
  /** The MCP server clients connect to (path /mcp). */
  mcp: RunningResourceServer;
  /** A second resource server on the same authorization server (path /other). */
  other: RunningResourceServer;
}

/**
 * Gatehouse's issuer must be known before the resource servers start (they check `iss` and fetch its
 * JWKS), and Gatehouse's RESOURCES must name the resource servers' URLs, known only once they listen:
 * so a port is picked for Gatehouse first, the resource servers start, then Gatehouse listens on it.
 */
async function startStack(t: Tap.Test): Promise<Stack> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const mcp = await startResourceServer({ issuer });
  t.teardown(() => mcp.close());
  const other = await startResourceServer({ issuer, path: '/other' });
  t.teardown(() => other.close());
  await listenGatehouse(t, { RESOURCES: `${mcp.resource} ${other.resource}` }, { port });
  return { issuer, mcp, other };
}

/** The auth-params of a `Bearer` challenge (RFC 7235 §2.1; quoted-string values as RFC 6750 §3 uses them). */
function bearerChallenge(header: string | null): Record<string, string> {
  if (header === null || !/^Bearer\s/i.test(header)) throw new Error(`not a Bearer challenge: ${header}`);
  const params: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([A-Za-z0-9_-]+)="((?:[^"\\]|\\.)*)"/g))
    params[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  return params;
}

/** An MCP request, as an MCP client sends it (Streamable HTTP: a JSON-RPC POST). */
function initialize(): { headers: Headers; body: string } {
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'interop', version: '0' } },
  });
  return { headers, body };
}

type Method = 'none' | 'client_secret_post' | 'client_secret_basic';

interface Registration {
  method: Method;
  /** The redirect URI registered (or several: the first names the registration's kind). */
  registered: string | string[];
  /** The redirect URI used at authorization (differs only in port for a native loopback client). */
  used: string;
  applicationType?: 'native';
  clientName?: string;
}

/** What an MCP client holds after connecting. */
interface Connected {
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  auth: oauth.ClientAuth;
  resource: string;
  tokens: oauth.TokenEndpointResponse;
}

function clientAuth(method: Method, secret: unknown): oauth.ClientAuth {
  if (method === 'none') return oauth.None();
  if (typeof secret !== 'string') throw new Error(`${method} registration returned no client_secret`);
  return method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

/** Calls the MCP server with an access token; throws WWWAuthenticateChallengeError on a 401/403 challenge. */
async function callMcp(serverUrl: string, accessToken: string): Promise<Response> {
  const { headers, body } = initialize();
  return oauth.protectedResourceRequest(accessToken, 'POST', new URL(serverUrl), headers, body, HTTP);
}

/** The whole discovery → registration → authorization → token path, from nothing but the server's URL. */
async function connect(
  t: Tap.Test,
  serverUrl: string,
  reg: Registration,
  ua: UserAgent,
  options: { resourceAsHref?: boolean } = {},
): Promise<Connected> {
  // 1. Unauthenticated call: 401 with the RFC 9728 §5.1 resource_metadata parameter.
  const { headers, body } = initialize();
  const first = await fetch(serverUrl, { method: 'POST', headers, body });
  t.equal(first.status, 401, 'the MCP server asks for a token');
  const challenge = bearerChallenge(first.headers.get('www-authenticate'));
  t.ok(challenge.resource_metadata, 'WWW-Authenticate names the resource metadata');

  // 2. RFC 9728: the metadata's `resource` must be the URL the client called (§3.3), checked by oauth4webapi.
  const prm = await oauth.processResourceDiscoveryResponse(
    new URL(serverUrl),
    await fetch(challenge.resource_metadata!),
  );
  const asUrl = prm.authorization_servers?.[0];
  if (!asUrl) throw new Error('no authorization_servers in the resource metadata');

  // 3. RFC 8414 discovery of the authorization server it names (issuer checked against that URL, §3.3).
  const as = await oauth.processDiscoveryResponse(
    new URL(asUrl),
    await oauth.discoveryRequest(new URL(asUrl), { algorithm: 'oauth2', ...HTTP }),
  );
  t.ok(
    as.code_challenge_methods_supported?.includes('S256'),
    'PKCE S256 advertised (MCP clients refuse to proceed without it)',
  );

  // 4. RFC 7591 registration, as MCP clients send it.
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: reg.clientName ?? `MCP client (${reg.method})`,
        redirect_uris: [reg.registered].flat(),
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: reg.method,
        ...(reg.applicationType ? { application_type: reg.applicationType } : {}),
      },
      HTTP,
    ),
  );
  t.equal(registered.token_endpoint_auth_method, reg.method);
  // Loopback redirects make a native client even when application_type is not sent (MCP clients omit it).
  const nativeLooking = [reg.registered].flat().some((uri) => uri.startsWith('http://127.0.0.1'));
  t.equal(registered.application_type, nativeLooking ? 'native' : 'web');
  const client: oauth.Client = { client_id: registered.client_id };
  const auth = clientAuth(reg.method, registered.client_secret);

  // 5. Authorization: PKCE, state, and resource = the MCP server (RFC 8707 §2.1). The MCP TypeScript SDK
  // sends it as a serialised URL, which gives a root-mounted server's URL a trailing slash.
  const resource = options.resourceAsHref ? new URL(prm.resource).href : prm.resource;
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = await authorizationRequest(as, verifier, {
    client_id: client.client_id,
    redirect_uri: reg.used,
    state,
    scope: (prm.scopes_supported ?? []).join(' '),
    resource,
  });
  const callback = await ua.authorize(url);
  t.equal(`${callback.origin}${callback.pathname}`, reg.used, 'redirected to the redirect URI the request used');
  const params = oauth.validateAuthResponse(as, client, callback, state);

  // 6. Token request, naming the resource again as the MCP spec requires.
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, reg.used, verifier, {
      ...HTTP,
      additionalParameters: { resource },
    }),
  );
  t.equal(decodeJwt(tokens.access_token).aud, prm.resource, 'aud is exactly the MCP server');
  return { as, client, auth, resource, tokens };
}

/** RFC 8414 discovery of Gatehouse, as the MCP client does it. */
async function oauthServerOf(issuer: string): Promise<{ as: oauth.AuthorizationServer }> {
  const url = new URL(issuer);
  return {
    as: await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { algorithm: 'oauth2', ...HTTP })),
  };
}

const loopback = () => `http://127.0.0.1:${randomInt(20000, 60000)}/callback`;
function otherPort(uri: string): string {
  const url = new URL(uri);
  url.port = String(((Number(url.port) - 20000 + 1 + randomInt(1000)) % 40000) + 20000);
  return url.href;
}

const registrations: Array<[string, () => Registration]> = [];
for (const method of ['none', 'client_secret_post', 'client_secret_basic'] as const) {
  registrations.push([
    `${method}, loopback redirect on its registered port`,
    () => {
      const uri = loopback();
      return { method, registered: uri, used: uri };
    },
  ]);
  registrations.push([
    `${method}, native loopback redirect on another port (RFC 8252 §7.3)`,
    () => {
      const uri = loopback();
      return { method, registered: uri, used: otherPort(uri), applicationType: 'native' };
    },
  ]);
  registrations.push([
    `${method}, https redirect (claude.ai's shape)`,
    () => ({ method, registered: CLAUDE_CALLBACK, used: CLAUDE_CALLBACK }),
  ]);
}
// VS Code registers its https broker pages and loopback URIs together, public, without application_type,
// then listens on whatever loopback port is free (RFC 8252 §7.2 and §7.3 in one native app).
const VSCODE_REDIRECTS = [
  'https://insiders.vscode.dev/redirect',
  'https://vscode.dev/redirect',
  'http://127.0.0.1/',
  'http://127.0.0.1:33418/',
];
registrations.push([
  "none, VS Code's registration (https broker and loopback), on a random loopback port",
  () => ({
    method: 'none',
    registered: VSCODE_REDIRECTS,
    used: `http://127.0.0.1:${randomInt(20000, 60000)}/`,
    clientName: 'Visual Studio Code',
  }),
]);
registrations.push([
  "none, VS Code's registration (https broker and loopback), through its https broker",
  () => ({
    method: 'none',
    registered: VSCODE_REDIRECTS,
    used: 'https://vscode.dev/redirect',
    clientName: 'Visual Studio Code',
  }),
]);

t.test('MCP client path: 401 → RFC 9728 → RFC 8414 → DCR → code + PKCE + resource → call → refresh', async (t) => {
  const stack = await startStack(t);
  for (const [name, make] of registrations) {
    await t.test(name, async (t) => {
      const reg = make();
      const { as, client, auth, resource, tokens } = await connect(
        t,
        stack.mcp.resource,
        reg,
        new UserAgent(stack.issuer),
      );
      t.equal(resource, stack.mcp.resource);
      if (typeof reg.registered === 'string' && reg.used !== reg.registered)
        t.not(new URL(reg.used).port, new URL(reg.registered).port, 'authorized on another port than registered');

      const ok = await callMcp(stack.mcp.resource, tokens.access_token);
      t.equal(ok.status, 200, 'the MCP server accepts the token');
      const seen = (await ok.json()) as Record<string, unknown>;
      t.equal(seen.sub, 'alice');
      t.equal(seen.client_id, client.client_id);
      t.equal(seen.aud, stack.mcp.resource);

      // Refresh (with the resource again) gives a token the server accepts too.
      t.type(tokens.refresh_token, 'string');
      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, {
          ...HTTP,
          additionalParameters: { resource },
        }),
      );
      t.not(refreshed.access_token, tokens.access_token);
      t.equal(decodeJwt(refreshed.access_token).aud, stack.mcp.resource);
      t.equal((await callMcp(stack.mcp.resource, refreshed.access_token)).status, 200, 'the refreshed token works');
    });
  }
});

t.test(
  "a token for one resource is refused by another (RFC 8707): 401 invalid_token with the other's metadata",
  async (t) => {
    const stack = await startStack(t);
    const reg = { method: 'none' as const, registered: CLAUDE_CALLBACK, used: CLAUDE_CALLBACK };
    const forOther = await connect(t, stack.other.resource, reg, new UserAgent(stack.issuer));
    t.equal(decodeJwt(forOther.tokens.access_token).aud, stack.other.resource);
    t.equal(
      (await callMcp(stack.other.resource, forOther.tokens.access_token)).status,
      200,
      'works where it was issued for',
    );

    const refused = await callMcp(stack.mcp.resource, forOther.tokens.access_token).then(
      () => null,
      (err: unknown) => err,
    );
    t.type(refused, oauth.WWWAuthenticateChallengeError, 'the MCP server refuses it');
    const challenge = (refused as oauth.WWWAuthenticateChallengeError).cause[0];
    t.equal((refused as oauth.WWWAuthenticateChallengeError).status, 401);
    t.equal(challenge?.scheme, 'bearer');
    t.equal(challenge?.parameters.error, 'invalid_token');
    t.equal(
      challenge?.parameters.resource_metadata,
      `${stack.mcp.url}/.well-known/oauth-protected-resource/mcp`,
      'pointing at its own metadata',
    );

    // Nor can the client turn its grant into a token for the MCP server: it never consented to that resource.
    const widened = await oauth.refreshTokenGrantRequest(
      forOther.as,
      forOther.client,
      forOther.auth,
      forOther.tokens.refresh_token!,
      {
        ...HTTP,
        additionalParameters: { resource: stack.mcp.resource },
      },
    );
    await t.rejects(oauth.processRefreshTokenResponse(forOther.as, forOther.client, widened), {
      code: oauth.RESPONSE_BODY_ERROR,
      error: 'invalid_target',
    });
  },
);

t.test(
  'an MCP server mounted at the root of its origin, reached by a client that sends the resource as a serialised URL',
  async (t) => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const root = await startResourceServer({ issuer, path: '/' });
    t.teardown(() => root.close());
    t.equal(root.resource, root.url, 'the server names itself without a trailing slash');
    await listenGatehouse(t, { RESOURCES: root.resource }, { port });
    const reg = { method: 'none' as const, registered: CLAUDE_CALLBACK, used: CLAUDE_CALLBACK };
    const { resource, tokens } = await connect(t, root.resource, reg, new UserAgent(issuer), { resourceAsHref: true });
    t.equal(resource, `${root.url}/`, 'the client asked for the slash form');
    t.equal((await callMcp(root.resource, tokens.access_token)).status, 200, 'the server accepts the token');
  },
);

t.test(
  'a client that registers and authorizes without any scope (Claude Code) is told the scope it lacks, and steps up',
  async (t) => {
    const stack = await startStack(t);
    const { as } = await oauthServerOf(stack.issuer);
    // Claude Code's shape: localhost (not the IP literal) on a random port, no scope, public.
    const redirect = `http://localhost:${randomInt(20000, 60000)}/callback`;
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        {
          client_name: 'Claude Code',
          redirect_uris: [redirect],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        },
        HTTP,
      ),
    );
    t.notOk(registered.scope, 'no scope registered');
    const client: oauth.Client = { client_id: registered.client_id };
    const ua = new UserAgent(stack.issuer);
    const authorizeFor = async (scope: string | null) => {
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = await authorizationRequest(as, verifier, {
        client_id: client.client_id,
        redirect_uri: redirect,
        state,
        resource: stack.mcp.resource,
        ...(scope === null ? {} : { scope }),
      });
      const params = oauth.validateAuthResponse(as, client, await ua.authorize(url), state);
      return oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirect, verifier, HTTP),
      );
    };

    // RFC 6749 §3.3: no scope asked means the client's default scopes, here none.
    const scopeless = await authorizeFor(null);
    t.notOk(scopeless.scope, 'a token with no scope');
    t.equal(decodeJwt(scopeless.access_token).aud, stack.mcp.resource, 'for the resource asked for');
    const refused = await callMcp(stack.mcp.resource, scopeless.access_token).then(
      () => null,
      (err: unknown) => err,
    );
    t.type(refused, oauth.WWWAuthenticateChallengeError);
    t.equal((refused as oauth.WWWAuthenticateChallengeError).status, 403, 'RFC 6750 §3.1 insufficient_scope');
    const challenge = (refused as oauth.WWWAuthenticateChallengeError).cause[0]!;
    t.equal(challenge.parameters.error, 'insufficient_scope');

    // The MCP spec's step-up: authorize again for the scope the challenge names.
    const stepped = await authorizeFor(challenge.parameters.scope!);
    t.equal(stepped.scope, 'read');
    t.equal((await callMcp(stack.mcp.resource, stepped.access_token)).status, 200);
  },
);

t.test('a browser-based MCP client (MCP Inspector) can make every call cross-origin', async (t) => {
  const stack = await startStack(t);
  const origin = 'http://localhost:6274';
  const preflight = async (url: string, method: string, headers: string) => {
    const res = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
    });
    t.ok(res.status === 204 || res.status === 200, `preflight ${method} ${new URL(url).pathname}: ${res.status}`);
    t.equal(res.headers.get('access-control-allow-origin'), '*', `${new URL(url).pathname}: any origin`);
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const h of headers.split(','))
      t.ok(allowed.includes(h.trim()), `${new URL(url).pathname} allows the ${h} header`);
  };
  // The MCP SDK sends MCP-Protocol-Version on its discovery requests; the token request carries Basic credentials.
  await preflight(`${stack.issuer}/.well-known/oauth-authorization-server`, 'GET', 'mcp-protocol-version');
  await preflight(`${stack.issuer}/register`, 'POST', 'content-type');
  await preflight(`${stack.issuer}/token`, 'POST', 'authorization,content-type');
  await preflight(`${stack.issuer}/revoke`, 'POST', 'authorization,content-type');
  const metadata = await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`, { headers: { origin } });
  t.equal(metadata.headers.get('access-control-allow-origin'), '*');
  const token = await fetch(`${stack.issuer}/token`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=refresh_token&refresh_token=x&client_id=nobody',
  });
  t.equal(token.headers.get('access-control-allow-origin'), '*', 'errors are readable cross-origin too');
  t.match((token.headers.get('access-control-expose-headers') ?? '').toLowerCase(), /www-authenticate/);
});
