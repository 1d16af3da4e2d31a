// The bare cost of a token on this machine: the least work an honest endpoint must do for each grant, on
// the same framework, with the same key and library (jose), and (for the grants that need one) one
// single-statement round trip to the same Postgres, against the same tables Gatehouse uses:
//   client_credentials   form + SHA-256 of the secret + sign
//   authorization_code   form + secret + SHA-256 of the code and of the PKCE verifier + one prepared
//                        UPDATE…RETURNING that consumes the code and INSERTs the first refresh token + sign
//   refresh_token        form + secret + SHA-256 of the token + new opaque token + one prepared
//                        UPDATE…RETURNING that retires the token and INSERTs its successor + sign
// No logging, no validation schema, no caches to consult: a lower bound, not a straw man.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyReply } from 'fastify';
import { CompactSign, importPKCS8 } from 'jose';
import pg from 'pg';

const {
  BARE_KEY_FILE,
  BARE_ALG = 'ES256',
  BARE_ISSUER,
  BARE_AUDIENCE,
  BARE_DATABASE_URL,
  BARE_SCHEMA = 'gatehouse',
} = process.env;
const key = await importPKCS8(readFileSync(BARE_KEY_FILE!, 'utf8'), BARE_ALG);
const kid = process.env.BARE_KID!;
/** client_id -> SHA-256 of its secret (base64url), the same form Gatehouse stores. */
const clients = new Map(
  Object.entries(JSON.parse(process.env.BARE_CLIENTS ?? '{}') as Record<string, string>).map(([id, hash]) => [
    id,
    Buffer.from(hash, 'base64url'),
  ]),
);
const REFRESH_TTL_SECONDS = 30 * 24 * 3600;
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const encoder = new TextEncoder();
const header = { alg: BARE_ALG, kid, typ: 'at+jwt' };

// Same pool size as Gatehouse's default (DATABASE_POOL_MAX=10).
const pool = BARE_DATABASE_URL
  ? new pg.Pool({ connectionString: BARE_DATABASE_URL, max: Number(process.env.BARE_POOL_MAX ?? 10) })
  : null;
pool?.on('error', () => {});
const prepared = process.env.BARE_PREPARED !== '0';
const t = (name: string) => `"${BARE_SCHEMA}".${name}`;

const REDEEM = `WITH code AS (
  UPDATE ${t('authorization_codes')} SET consumed_at = now(), family_id = $5
  WHERE code_hash = $1 AND client_id = $2 AND code_challenge = $3 AND redirect_uri = $4 AND consumed_at IS NULL AND expires_at > now()
  RETURNING family_id, client_id, sub, scopes, resources, auth_time)
INSERT INTO ${t('refresh_tokens')} (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at)
SELECT $6, family_id, 0, client_id, sub, scopes, resources, auth_time, now() + make_interval(secs => ${REFRESH_TTL_SECONDS}) FROM code
RETURNING sub, scopes, resources, auth_time`;

const ROTATE = `WITH old AS (
  UPDATE ${t('refresh_tokens')} SET rotated_at = now()
  WHERE token_hash = $1 AND client_id = $2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()
  RETURNING family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at)
INSERT INTO ${t('refresh_tokens')} (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at)
SELECT $3, family_id, generation + 1, client_id, sub, scopes, resources, auth_time, expires_at FROM old
RETURNING sub, scopes, resources, auth_time`;

interface Grant {
  sub: string;
  scopes: string[];
  resources: string[];
  auth_time: Date;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

// JWT ids from pooled CSPRNG bytes, as Gatehouse draws them (one getrandom per 256 ids).
let idPool = Buffer.alloc(0);
let idOffset = 0;
function jti(): string {
  if (idOffset + 16 > idPool.length) {
    idPool = randomBytes(4096);
    idOffset = 0;
  }
  idOffset += 16;
  return idPool.toString('base64url', idOffset - 16, idOffset);
}

/** The same RFC 9068 claims Gatehouse signs, built directly and signed with jose's CompactSign. */
function sign(sub: string, clientId: string, aud: string[], scopes: string[], authTime?: number): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: BARE_ISSUER,
    sub,
    aud: aud.length === 1 ? aud[0] : aud,
    client_id: clientId,
    iat,
    exp: iat + 3600,
    jti: jti(),
  };
  if (scopes.length > 0) payload.scope = scopes.join(' ');
  if (authTime !== undefined) payload.auth_time = authTime;
  return new CompactSign(encoder.encode(JSON.stringify(payload))).setProtectedHeader(header).sign(key);
}

/** client_secret_basic, checked with one SHA-256 and a constant-time compare. */
function authenticate(authorization: string | undefined): string | null {
  const [id = '', secret = ''] = Buffer.from((authorization ?? '').slice(6), 'base64')
    .toString()
    .split(':');
  const clientId = decodeURIComponent(id);
  const expected = clients.get(clientId);
  const digest = createHash('sha256').update(decodeURIComponent(secret)).digest();
  return expected && timingSafeEqual(digest, expected) ? clientId : null;
}

async function userTokens(reply: FastifyReply, clientId: string, grant: Grant, refreshToken: string) {
  const token = await sign(
    grant.sub,
    clientId,
    grant.resources,
    grant.scopes,
    Math.floor(grant.auth_time.getTime() / 1000),
  );
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({
      access_token: token,
      token_type: 'Bearer',
      expires_in: 3600,
      ...(grant.scopes.length > 0 ? { scope: grant.scopes.join(' ') } : {}),
      refresh_token: refreshToken,
    });
}

const invalidGrant = (reply: FastifyReply) => reply.code(400).send({ error: 'invalid_grant' });

const app = Fastify({ logger: false });
await app.register(formbody);
app.post('/token', async (request, reply) => {
  const body = request.body as Record<string, string | undefined>;
  const clientId = authenticate(request.headers.authorization);
  if (clientId === null) return reply.code(401).send({ error: 'invalid_client' });
  switch (body.grant_type) {
    case 'client_credentials': {
      const token = await sign(clientId, clientId, [BARE_AUDIENCE!], []);
      return reply
        .header('cache-control', 'no-store')
        .header('pragma', 'no-cache')
        .send({ access_token: token, token_type: 'Bearer', expires_in: 3600 });
    }
    case 'authorization_code': {
      const { code, code_verifier: verifier, redirect_uri: redirectUri } = body;
      if (!pool || !code || !verifier || !redirectUri || !VERIFIER.test(verifier)) return invalidGrant(reply);
      const refreshToken = randomBytes(32).toString('base64url');
      const values = [
        sha256(code),
        clientId,
        sha256(verifier),
        redirectUri,
        randomBytes(16).toString('base64url'),
        sha256(refreshToken),
      ];
      const { rows } = await pool.query<Grant>(
        prepared ? { name: 'redeem', text: REDEEM, values } : { text: REDEEM, values },
      );
      return rows[0] ? userTokens(reply, clientId, rows[0], refreshToken) : invalidGrant(reply);
    }
    case 'refresh_token': {
      const presented = body.refresh_token;
      if (!pool || !presented) return invalidGrant(reply);
      const next = randomBytes(32).toString('base64url');
      const values = [sha256(presented), clientId, sha256(next)];
      const { rows } = await pool.query<Grant>(
        prepared ? { name: 'rotate', text: ROTATE, values } : { text: ROTATE, values },
      );
      return rows[0] ? userTokens(reply, clientId, rows[0], next) : invalidGrant(reply);
    }
    default:
      return reply.code(400).send({ error: 'unsupported_grant_type' });
  }
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`LISTENING ${typeof address === 'object' && address ? address.port : 0}\n`);
process.on(
  'SIGTERM',
  () =>
    void app
      .close()
      .then(() => pool?.end())
      .then(() => process.exit(0)),
);
