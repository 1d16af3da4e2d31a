// The bare cost of a token on this machine: parse the form, check a SHA-256 secret, sign the same JWT
// with the same key and library (jose), on the same framework. No database, no logging.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import formbody from '@fastify/formbody';
import Fastify from 'fastify';
import { importPKCS8, SignJWT } from 'jose';

const { BARE_KEY_FILE, BARE_ALG = 'ES256', BARE_CLIENT_ID, BARE_SECRET_HASH, BARE_ISSUER, BARE_AUDIENCE } = process.env;
const key = await importPKCS8(readFileSync(BARE_KEY_FILE!, 'utf8'), BARE_ALG);
const kid = process.env.BARE_KID!;
const expected = Buffer.from(BARE_SECRET_HASH!, 'base64url');

const app = Fastify({ logger: false });
await app.register(formbody);
app.post('/token', async (request, reply) => {
  const body = request.body as Record<string, string>;
  const auth = request.headers.authorization ?? '';
  const [id = '', secret = ''] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
  const digest = createHash('sha256').update(decodeURIComponent(secret)).digest();
  if (body.grant_type !== 'client_credentials' || id !== BARE_CLIENT_ID || !timingSafeEqual(digest, expected)) {
    return reply.code(401).send({ error: 'invalid_client' });
  }
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ client_id: id })
    .setProtectedHeader({ alg: BARE_ALG, kid, typ: 'at+jwt' })
    .setIssuer(BARE_ISSUER!)
    .setSubject(id)
    .setAudience(BARE_AUDIENCE!)
    .setJti(randomBytes(16).toString('base64url'))
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(key);
  return reply.header('cache-control', 'no-store').send({ access_token: token, token_type: 'Bearer', expires_in: 3600 });
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`LISTENING ${typeof address === 'object' && address ? address.port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
