// The bare cost of a token on this machine: the least work an honest endpoint must do for each grant, on
// the same framework, with the same key, signing as Gatehouse signs (node:crypto, synchronous), and (for the grants that need one) one
// single-statement round trip to the same Postgres, against the same tables Gatehouse uses:
//   client_credentials   form + SHA-256 of the secret + sign
//   authorization_code   form + secret + SHA-256 of the code and of the PKCE verifier + one prepared
//                        UPDATE…RETURNING that consumes the code and INSERTs the first refresh token + sign
//   refresh_token        form + secret + SHA-256 of the token + new opaque token + one prepared
//                        UPDATE…RETURNING that retires the token and INSERTs its successor + sign
// With a DPoP header (RFC 9449) the same grant first verifies the proof as RFC 9449 §4.3 asks (typ, alg,
// signature by its embedded jwk, htm, htu, iat, the key's thumbprint) with the same library, records its
// jti in one prepared INSERT … ON CONFLICT DO NOTHING on Gatehouse's replay table, binds the token (cnf.jkt)
// and, for a refresh, checks the chain's bound key inside the rotation statement.
// POST /introspect (RFC 7662) for the token's own client: a JWT is verified (node:crypto, the public half of
// the key) and, when it was issued for a user (auth_time), one prepared SELECT asks whether the user's grants
// were revoked since (the check Gatehouse's design requires); an opaque token is one prepared SELECT of a
// live refresh token by its hash.
// The code redemptions and refresh rotations of concurrent requests share one statement (an UPDATE …
// FROM unnest(…) and the INSERT of the refresh tokens), and so do introspection's SELECTs, up to 64 per
// round trip, as Gatehouse batches them; BARE_BATCH=0 (BENCH_BARE_BATCH=0) sends one statement per request
// instead, for comparison.
// No logging, no validation schema, no caches to consult: a lower bound, not a straw man.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as nodeSign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyReply } from 'fastify';
import { EmbeddedJWK, calculateJwkThumbprint, jwtVerify } from 'jose';
import pg from 'pg';

const {
  BARE_KEY_FILE,
  BARE_ALG = 'ES256',
  BARE_ISSUER,
  BARE_AUDIENCE,
  BARE_DATABASE_URL,
  BARE_SCHEMA = 'gatehouse',
} = process.env;
const key = createPrivateKey(readFileSync(BARE_KEY_FILE!, 'utf8'));
const publicKey = createPublicKey(key);
if (BARE_ALG !== 'ES256') throw new Error('the bare endpoint signs ES256 only');
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
const header = { alg: BARE_ALG, kid, typ: 'at+jwt' };
const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const AT_HEADER = b64json(header);
const ID_HEADER = b64json({ alg: header.alg, kid: header.kid });
/** A compact JWS, ES256 with node:crypto (R‖S signature, RFC 7518 §3.4), as Gatehouse signs. */
function jws(encodedHeader: string, payload: unknown): string {
  const input = `${encodedHeader}.${b64json(payload)}`;
  return `${input}.${nodeSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

// Same pool size as Gatehouse's default (DATABASE_POOL_MAX=10).
const pool = BARE_DATABASE_URL
  ? new pg.Pool({
      connectionString: BARE_DATABASE_URL,
      max: Number(process.env.BARE_POOL_MAX ?? 10),
      // How the bench tells this server's backends from the rest of Postgres.
      application_name: 'bench-bare',
    })
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

// The same rotation for a chain bound to a DPoP key: the key is part of the condition, and carried over.
const ROTATE_BOUND = `WITH old AS (
  UPDATE ${t('refresh_tokens')} SET rotated_at = now()
  WHERE token_hash = $1 AND client_id = $2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()
    AND (dpop_jkt IS NULL OR dpop_jkt = $4)
  RETURNING family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at, dpop_jkt)
INSERT INTO ${t('refresh_tokens')} (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at, dpop_jkt)
SELECT $3, family_id, generation + 1, client_id, sub, scopes, resources, auth_time, expires_at, dpop_jkt FROM old
RETURNING sub, scopes, resources, auth_time`;

// Batched (the default; BARE_BATCH=0 turns it off): the code redemptions, and the rotations, asked for
// during one turn of the event loop share one statement over arrays of their values, up to 64 per round
// trip, as Gatehouse batches them (src/db/batch.ts). Each row keeps its own conditions and its own answer.
const REDEEM_BATCH = `WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
    AS i(code_hash, client_id, code_challenge, redirect_uri, family_id, token_hash, ord)),
code AS (
  UPDATE ${t('authorization_codes')} c SET consumed_at = now(), family_id = i.family_id FROM input i
  WHERE c.code_hash = i.code_hash AND c.client_id = i.client_id AND c.code_challenge = i.code_challenge
    AND c.redirect_uri = i.redirect_uri AND c.consumed_at IS NULL AND c.expires_at > now()
  RETURNING c.family_id, c.client_id, c.sub, c.scopes, c.resources, c.auth_time, i.token_hash, i.ord),
chain AS (
  INSERT INTO ${t('refresh_tokens')} (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at)
  SELECT token_hash, family_id, 0, client_id, sub, scopes, resources, auth_time, now() + make_interval(secs => ${REFRESH_TTL_SECONDS}) FROM code)
SELECT ord, sub, scopes, resources, auth_time FROM code`;

const ROTATE_BATCH = `WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[]) AS i(token_hash, client_id, new_hash, jkt, ord)),
old AS (
  UPDATE ${t('refresh_tokens')} r SET rotated_at = now() FROM input i
  WHERE r.token_hash = i.token_hash AND r.client_id = i.client_id AND r.rotated_at IS NULL AND r.revoked_at IS NULL
    AND r.expires_at > now() AND (r.dpop_jkt IS NULL OR r.dpop_jkt = i.jkt)
  RETURNING r.family_id, r.generation, r.client_id, r.sub, r.scopes, r.resources, r.auth_time, r.expires_at, r.dpop_jkt, i.new_hash, i.ord),
ins AS (
  INSERT INTO ${t('refresh_tokens')} (token_hash, family_id, generation, client_id, sub, scopes, resources, auth_time, expires_at, dpop_jkt)
  SELECT new_hash, family_id, generation + 1, client_id, sub, scopes, resources, auth_time, expires_at, dpop_jkt FROM old)
SELECT ord, sub, scopes, resources, auth_time FROM old`;
const batching = process.env.BARE_BATCH !== '0';

/** Calls of one statement made in the same turn of the event loop, sent as one (columns of values, then the ordinals). */
function batcher<R = Grant>(name: string, text: string) {
  type Pending = { values: unknown[]; resolve: (row: R | undefined) => void; reject: (e: unknown) => void };
  let queue: Pending[] = [];
  const flush = () => {
    const batch = queue.slice(0, 64);
    queue = queue.slice(64);
    if (queue.length > 0) setImmediate(flush);
    const columns = batch[0]!.values.map((_, c) => batch.map((p) => p.values[c]));
    const values = [...columns, batch.map((_, i) => i)];
    pool!
      .query<R & { ord: number }>(prepared ? { name, text, values } : { text, values })
      .then(({ rows }) => {
        const byOrd = new Map(rows.map((r) => [r.ord, r]));
        batch.forEach((p, i) => p.resolve(byOrd.get(i)));
      })
      .catch((err: unknown) => batch.forEach((p) => p.reject(err)));
  };
  return (values: unknown[]): Promise<R | undefined> =>
    new Promise((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ values, resolve, reject });
    });
}
const redeemBatched = batcher('redeem_batch', REDEEM_BATCH);
const rotateBatched = batcher('rotate_batch', ROTATE_BATCH);

const RECORD_PROOF = `INSERT INTO ${t('dpop_proofs')} (proof_hash, expires_at) VALUES ($1, $2)
ON CONFLICT (proof_hash) DO NOTHING RETURNING proof_hash`;
const DPOP_ALGS = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];
const TOKEN_URL = `${BARE_ISSUER}/token`;

/** RFC 9449 §4.3 with jose, as little as an honest endpoint can do; the key's thumbprint, or null. */
async function checkProof(proof: string): Promise<string | null> {
  try {
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: DPOP_ALGS,
    });
    const now = Math.floor(Date.now() / 1000);
    const iat = payload.iat;
    if (payload.htm !== 'POST' || payload.htu !== TOKEN_URL || typeof payload.jti !== 'string') return null;
    if (typeof iat !== 'number' || iat > now + 30 || iat < now - 90) return null;
    const jkt = await calculateJwkThumbprint(protectedHeader.jwk!);
    if (!pool) return jkt;
    const values = [sha256(`${jkt}\u0000${payload.jti}`), new Date((iat + 120) * 1000)];
    const { rows } = await pool.query(
      prepared ? { name: 'record_proof', text: RECORD_PROOF, values } : { text: RECORD_PROOF, values },
    );
    return rows.length === 1 ? jkt : null;
  } catch {
    return null;
  }
}

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

/** The same RFC 9068 claims Gatehouse signs, built directly and signed. */
function sign(
  sub: string,
  clientId: string,
  aud: string[],
  scopes: string[],
  authTime?: number,
  jkt?: string | null,
): string {
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
  if (jkt) payload.cnf = { jkt };
  return jws(AT_HEADER, payload);
}

/** An OpenID Connect ID token (iss, sub, aud, exp, iat, auth_time, azp): the second signature of an openid code exchange. */
function signIdToken(sub: string, clientId: string, authTime: number): string {
  const iat = Math.floor(Date.now() / 1000);
  const payload = { iss: BARE_ISSUER, sub, aud: clientId, exp: iat + 3600, iat, auth_time: authTime, azp: clientId };
  return jws(ID_HEADER, payload);
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

async function userTokens(
  reply: FastifyReply,
  clientId: string,
  grant: Grant,
  refreshToken: string,
  jkt: string | null,
) {
  const authTime = Math.floor(grant.auth_time.getTime() / 1000);
  const token = sign(grant.sub, clientId, grant.resources, grant.scopes, authTime, jkt);
  // OpenID Connect: one more signature, an ID token with the claims Gatehouse puts in one.
  const idToken = grant.scopes.includes('openid') ? signIdToken(grant.sub, clientId, authTime) : undefined;
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({
      access_token: token,
      token_type: jkt ? 'DPoP' : 'Bearer',
      expires_in: 3600,
      ...(grant.scopes.length > 0 ? { scope: grant.scopes.join(' ') } : {}),
      refresh_token: refreshToken,
      ...(idToken ? { id_token: idToken } : {}),
    });
}

const invalidGrant = (reply: FastifyReply) => reply.code(400).send({ error: 'invalid_grant' });

const app = Fastify({ logger: false });
await app.register(formbody);
app.post('/token', async (request, reply) => {
  const body = request.body as Record<string, string | undefined>;
  const clientId = authenticate(request.headers.authorization);
  if (clientId === null) return reply.code(401).send({ error: 'invalid_client' });
  const proof = request.headers.dpop;
  const jkt = typeof proof === 'string' ? await checkProof(proof) : null;
  if (proof !== undefined && jkt === null) return reply.code(400).send({ error: 'invalid_dpop_proof' });
  switch (body.grant_type) {
    case 'client_credentials': {
      const token = sign(clientId, clientId, [BARE_AUDIENCE!], [], undefined, jkt);
      return reply
        .header('cache-control', 'no-store')
        .header('pragma', 'no-cache')
        .send({ access_token: token, token_type: jkt ? 'DPoP' : 'Bearer', expires_in: 3600 });
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
      const row = batching
        ? await redeemBatched(values)
        : (await pool.query<Grant>(prepared ? { name: 'redeem', text: REDEEM, values } : { text: REDEEM, values }))
            .rows[0];
      return row ? userTokens(reply, clientId, row, refreshToken, jkt) : invalidGrant(reply);
    }
    case 'refresh_token': {
      const presented = body.refresh_token;
      if (!pool || !presented) return invalidGrant(reply);
      const next = randomBytes(32).toString('base64url');
      const values = [sha256(presented), clientId, sha256(next), ...(jkt ? [jkt] : [])];
      if (batching) {
        const row = await rotateBatched([sha256(presented), clientId, sha256(next), jkt]);
        return row ? userTokens(reply, clientId, row, next, jkt) : invalidGrant(reply);
      }
      const [name, text] = jkt ? ['rotate_bound', ROTATE_BOUND] : ['rotate', ROTATE];
      const { rows } = await pool.query<Grant>(prepared ? { name, text, values } : { text, values });
      return rows[0] ? userTokens(reply, clientId, rows[0], next, jkt) : invalidGrant(reply);
    }
    default:
      return reply.code(400).send({ error: 'unsupported_grant_type' });
  }
});
const REFRESH_INFO = `SELECT client_id, sub, scopes, created_at, expires_at FROM ${t('refresh_tokens')}
  WHERE token_hash = $1 AND client_id = $2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()`;
const GRANT_REVOKED = `SELECT 1 AS one FROM ${t('grant_revocations')}
  WHERE sub = $1 AND (client_id IS NULL OR client_id = $2) AND revoked_at >= $3 LIMIT 1`;
// Batched like the token endpoint's statements: concurrent introspections share one SELECT.
const REFRESH_INFO_BATCH = `WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) AS i(token_hash, client_id, ord))
SELECT i.ord, r.client_id, r.sub, r.scopes, r.created_at, r.expires_at FROM input i
  JOIN ${t('refresh_tokens')} r ON r.token_hash = i.token_hash AND r.client_id = i.client_id
  WHERE r.rotated_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > now()`;
const GRANT_REVOKED_BATCH = `WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[]) AS i(sub, client_id, issued_at, ord))
SELECT i.ord FROM input i WHERE EXISTS (SELECT 1 FROM ${t('grant_revocations')} g
  WHERE g.sub = i.sub AND (g.client_id IS NULL OR g.client_id = i.client_id) AND g.revoked_at >= i.issued_at)`;
type RefreshInfo = { client_id: string; sub: string; scopes: string[]; created_at: Date; expires_at: Date };
const refreshInfoBatched = batcher<RefreshInfo>('refresh_info_batch', REFRESH_INFO_BATCH);
const grantRevokedBatched = batcher<{ ord: number }>('grant_revoked_batch', GRANT_REVOKED_BATCH);
const INACTIVE = { active: false };

/** A JWT access token of ours: signature (ES256, R‖S), typ, iss and exp; its claims, or null. */
function verifyAccessToken(token: string): Record<string, unknown> | null {
  const [h, p, sig] = token.split('.');
  if (!h || !p || !sig) return null;
  const head = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string; typ?: string };
  if (head.alg !== 'ES256' || head.typ !== 'at+jwt') return null;
  const ok = verify(
    'sha256',
    Buffer.from(`${h}.${p}`),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(sig, 'base64url'),
  );
  if (!ok) return null;
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  if (claims.iss !== BARE_ISSUER || typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return null;
  return claims;
}

app.post('/introspect', async (request, reply) => {
  const clientId = authenticate(request.headers.authorization);
  if (clientId === null) return reply.code(401).send({ error: 'invalid_client' });
  const token = (request.body as Record<string, string | undefined>).token;
  if (!token || !pool) return reply.code(400).send({ error: 'invalid_request' });
  reply.header('cache-control', 'no-store');
  if (!token.includes('.')) {
    const values = [sha256(token), clientId];
    const row = batching
      ? await refreshInfoBatched(values)
      : (
          await pool.query<RefreshInfo>(
            prepared ? { name: 'refresh_info', text: REFRESH_INFO, values } : { text: REFRESH_INFO, values },
          )
        ).rows[0];
    if (!row) return reply.send(INACTIVE);
    return reply.send({
      active: true,
      scope: row.scopes.join(' '),
      client_id: row.client_id,
      exp: Math.floor(row.expires_at.getTime() / 1000),
      iat: Math.floor(row.created_at.getTime() / 1000),
      sub: row.sub,
      iss: BARE_ISSUER,
    });
  }
  let claims: Record<string, unknown> | null;
  try {
    claims = verifyAccessToken(token);
  } catch {
    claims = null;
  }
  if (!claims || claims.client_id !== clientId) return reply.send(INACTIVE);
  if (claims.auth_time !== undefined) {
    const values = [claims.sub, clientId, new Date((claims.iat as number) * 1000)];
    const revoked = batching
      ? (await grantRevokedBatched(values)) !== undefined
      : (
          await pool.query(
            prepared ? { name: 'grant_revoked', text: GRANT_REVOKED, values } : { text: GRANT_REVOKED, values },
          )
        ).rows.length > 0;
    if (revoked) return reply.send(INACTIVE);
  }
  return reply.send({ active: true, token_type: 'Bearer', ...claims });
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
