import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Config } from '../config/index.js';
import type { Database, Db } from '../db/database.js';
import type { AuthorizationRequestRow } from '../db/tables/authorization-request.table.js';
import type { SessionRow } from '../db/tables/session.table.js';
import { cookieName, cookieOptions } from '../oauth/browser-binding.js';
import { generateToken, hashSecret } from '../oauth/secrets.js';
import { answerAuthorizationRequest } from '../repositories/authorization-request.repository.js';
import {
  findSession,
  insertSession,
  revokeSession,
  revokeSessionsFor,
  touchSession,
} from '../repositories/session.repository.js';

/** A live Gatehouse browser session: who signed in at the host, when and how. */
export interface Session {
  /** SHA-256 of the cookie value; the value itself is never stored. */
  idHash: string;
  sub: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
  /** The host's `claims` (email, name…). */
  claims: Record<string, unknown>;
}

/** What a new session records. */
export interface NewSession {
  sub: string;
  authTime: Date;
  amr?: string[];
  acr?: string | null;
  claims?: Record<string, unknown>;
}

export interface SessionServiceOptions {
  /** The clock (tests move it). */
  now?: () => Date;
}

/** last_seen_at is written at most this often per session, so a busy browser is not a write per request. */
const TOUCH_INTERVAL_MS = 60_000;
/** A cookie value generateToken could have produced; anything else is not looked up. */
const SESSION_ID_FORM = /^[A-Za-z0-9_-]{43}$/;
const BASE_NAME = 'gatehouse_session';

/** Thrown inside the sign-in transaction to roll it back when the request was already answered. */
class AlreadyAnswered extends Error {}

function toSession(row: SessionRow): Session {
  return { idHash: row.id_hash, sub: row.sub, authTime: row.auth_time, amr: row.amr, acr: row.acr, claims: row.claims };
}

/**
 * Gatehouse browser sessions: an opaque 256-bit id in an HttpOnly cookie (`__Host-` over https), only
 * its SHA-256 stored. A session ends when revoked, SESSION_ABSOLUTE_TTL_SECONDS after sign-in, or after
 * SESSION_IDLE_TTL_SECONDS without use.
 */
export class SessionService {
  readonly cookieName: string;
  readonly #db: Kysely<Database>;
  readonly #config: Readonly<Pick<Config, 'issuer' | 'flow'>>;
  readonly #now: () => Date;

  constructor(
    db: Kysely<Database>,
    config: Readonly<Pick<Config, 'issuer' | 'flow'>>,
    options: SessionServiceOptions = {},
  ) {
    this.#db = db;
    this.#config = config;
    this.#now = options.now ?? (() => new Date());
    this.cookieName = cookieName(config, BASE_NAME);
  }

  /** The browser's live session, or null (no cookie, unknown, revoked, past its absolute or idle expiry). */
  async current(request: FastifyRequest): Promise<Session | null> {
    const idHash = this.#cookieHash(request);
    if (!idHash) return null;
    const row = await findSession(this.#db, idHash);
    if (!row || !this.#isLive(row)) return null;
    const now = this.#now();
    const staleBefore = new Date(now.getTime() - TOUCH_INTERVAL_MS);
    if (row.last_seen_at < staleBefore) await touchSession(this.#db, idHash, now, staleBefore);
    return toSession(row);
  }

  /** Creates a session for a signed-in user and sets its cookie on the reply. */
  async create(reply: FastifyReply, input: NewSession): Promise<Session> {
    const { id, row } = this.#newRow(input);
    const session = toSession(await insertSession(this.#db, row));
    this.#setCookie(reply, id);
    return session;
  }

  /**
   * Creates a session and records it as the answer to a pending authorization request, in one
   * transaction: when the request was already answered (a replayed login_response, or a concurrent
   * one), nothing is stored, no cookie is set, and undefined is returned.
   */
  async createAnswering(
    reply: FastifyReply,
    input: NewSession,
    requestId: string,
  ): Promise<{ session: Session; pending: AuthorizationRequestRow } | undefined> {
    const { id, row } = this.#newRow(input);
    let result: { session: Session; pending: AuthorizationRequestRow };
    try {
      result = await this.#db.transaction().execute(async (trx: Db) => {
        const session = toSession(await insertSession(trx, row));
        const pending = await answerAuthorizationRequest(trx, requestId, session.idHash);
        if (!pending) throw new AlreadyAnswered();
        return { session, pending };
      });
    } catch (err) {
      if (err instanceof AlreadyAnswered) return undefined;
      throw err;
    }
    this.#setCookie(reply, id);
    return result;
  }

  /** Ends the browser's session: revokes its row (if any) and clears the cookie. True when a live session was revoked. */
  async end(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const idHash = this.#cookieHash(request);
    const revoked = idHash ? await revokeSession(this.#db, idHash, this.#now()) : false;
    // Only a browser that sent the cookie has one to clear.
    if (request.cookies[this.cookieName] !== undefined)
      reply.clearCookie(this.cookieName, cookieOptions(this.#config, 0));
    return revoked;
  }

  /** Revokes one session by its id hash. */
  async revoke(idHash: string): Promise<boolean> {
    return revokeSession(this.#db, idHash, this.#now());
  }

  /** Revokes every live session of a user (the host deleted or disabled them); returns how many. */
  async revokeAllFor(sub: string): Promise<number> {
    return revokeSessionsFor(this.#db, sub, this.#now());
  }

  #cookieHash(request: FastifyRequest): string | null {
    const value = request.cookies[this.cookieName];
    return typeof value === 'string' && SESSION_ID_FORM.test(value) ? hashSecret(value) : null;
  }

  #isLive(row: SessionRow): boolean {
    const now = this.#now().getTime();
    if (row.revoked_at !== null) return false;
    if (row.expires_at.getTime() <= now) return false;
    return row.last_seen_at.getTime() + this.#config.flow.sessionIdleTtl * 1000 > now;
  }

  #newRow(input: NewSession) {
    const id = generateToken();
    const now = this.#now();
    const row = {
      id_hash: hashSecret(id),
      sub: input.sub,
      auth_time: input.authTime,
      amr: input.amr ?? [],
      acr: input.acr ?? null,
      // jsonb through node-postgres: a JSON string, not an object (which it would send as an array literal for arrays).
      claims: JSON.stringify(input.claims ?? {}),
      created_at: now,
      last_seen_at: now,
      expires_at: new Date(now.getTime() + this.#config.flow.sessionAbsoluteTtl * 1000),
    };
    return { id, row };
  }

  #setCookie(reply: FastifyReply, id: string): void {
    // The cookie lives as long as the session can; idle expiry is enforced on the server.
    reply.setCookie(this.cookieName, id, cookieOptions(this.#config, this.#config.flow.sessionAbsoluteTtl));
  }
}
