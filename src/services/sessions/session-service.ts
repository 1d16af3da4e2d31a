import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import type { Database, Db } from '../../db/database.js';
import type { SessionRow } from '../../db/tables/session.table.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import { type CookieInstruction, cookieName, cookieOptions } from '../../oauth/browser-binding.js';
import { generateToken, hashSecret } from '../../oauth/secrets.js';
import {
  findSession,
  insertSession,
  revokeSession,
  revokeSessionsFor,
  touchSession,
} from '../../repositories/session.repository.js';

/** A live Gatehouse browser session: who signed in at the host, when and how. */
export interface Session {
  /** SHA-256 of the cookie value; the value itself is never stored. */
  idHash: string;
  /** The session's public name: the OpenID Connect `sid`. Safe to publish, unlike the cookie. */
  sid: string;
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

/** A session just created, and the cookie that hands it to the browser. */
export interface CreatedSession {
  session: Session;
  cookie: CookieInstruction;
}

/** last_seen_at is written at most this often per session, so a busy browser is not a write per request. */
const TOUCH_INTERVAL_MS = 60_000;
/** A cookie value generateToken could have produced; anything else is not looked up. */
const SESSION_ID_FORM = /^[A-Za-z0-9_-]{43}$/;
const BASE_NAME = 'gatehouse_session';

/** Thrown inside a createWith transaction to roll it back when the other write declined. */
class Declined extends Error {}

function toSession(row: SessionRow): Session {
  return {
    idHash: row.id_hash,
    sid: row.sid,
    sub: row.sub,
    authTime: row.auth_time,
    amr: row.amr,
    acr: row.acr,
    claims: row.claims,
  };
}

/**
 * Gatehouse browser sessions: an opaque 256-bit id in an HttpOnly cookie (`__Host-` over https), only
 * its SHA-256 stored. A session ends when revoked, SESSION_ABSOLUTE_TTL_SECONDS after sign-in, or after
 * SESSION_IDLE_TTL_SECONDS without use. Takes the cookie's value and answers with cookie instructions:
 * the edge reads and sets the cookie.
 */
export class SessionService {
  /** The session cookie's name (`__Host-gatehouse_session` over https). */
  readonly cookieName: string;
  readonly #db: Kysely<Database>;
  readonly #config: Readonly<Pick<Config, 'issuer' | 'flow'>>;
  readonly #clock: Clock;

  constructor(db: Kysely<Database>, config: Readonly<Pick<Config, 'issuer' | 'flow'>>, clock: Clock = systemClock) {
    this.#db = db;
    this.#config = config;
    this.#clock = clock;
    this.cookieName = cookieName(config, BASE_NAME);
  }

  /** The live session a cookie value names, or null (none, unknown, revoked, past its absolute or idle expiry). */
  async current(cookieValue: string | undefined): Promise<Session | null> {
    const idHash = this.#hashOf(cookieValue);
    if (!idHash) return null;
    const row = await findSession(this.#db, idHash);
    const now = this.#clock();
    if (!row || !this.#isLive(row, now)) return null;
    const staleBefore = new Date(now.getTime() - TOUCH_INTERVAL_MS);
    if (row.last_seen_at < staleBefore) await touchSession(this.#db, idHash, now, staleBefore);
    return toSession(row);
  }

  /** Creates a session for a signed-in user; the cookie is the caller's to set. */
  async create(input: NewSession): Promise<CreatedSession> {
    const { id, row } = this.#newRow(input);
    const session = toSession(await insertSession(this.#db, row));
    return { session, cookie: this.#cookie(id) };
  }

  /**
   * Creates a session together with another write (`alongside`, given the same transaction), atomically:
   * when `alongside` answers undefined (it declined: say, the request it answers was already answered),
   * nothing is stored and undefined is returned.
   */
  async createWith<T>(
    input: NewSession,
    alongside: (trx: Db, session: Session) => Promise<T | undefined>,
  ): Promise<(CreatedSession & { result: T }) | undefined> {
    const { id, row } = this.#newRow(input);
    try {
      const { session, result } = await this.#db.transaction().execute(async (trx: Db) => {
        const created = toSession(await insertSession(trx, row));
        const other = await alongside(trx, created);
        if (other === undefined) throw new Declined();
        return { session: created, result: other };
      });
      return { session, result, cookie: this.#cookie(id) };
    } catch (err) {
      if (err instanceof Declined) return undefined;
      throw err;
    }
  }

  /**
   * Ends the session a cookie value names: revokes its row (if any). `revoked` is true when a live
   * session was revoked; `cookie` clears the browser's cookie, null when it sent none.
   */
  async end(cookieValue: string | undefined): Promise<{ revoked: boolean; cookie: CookieInstruction | null }> {
    const idHash = this.#hashOf(cookieValue);
    const revoked = idHash ? await revokeSession(this.#db, idHash, this.#clock()) : false;
    // Only a browser that sent the cookie has one to clear.
    const cookie =
      cookieValue === undefined
        ? null
        : { name: this.cookieName, value: null, options: cookieOptions(this.#config, 0) };
    return { revoked, cookie };
  }

  /** Revokes one session by its id hash. */
  async revoke(idHash: string): Promise<boolean> {
    return revokeSession(this.#db, idHash, this.#clock());
  }

  /** Revokes every live session of a user (the host deleted or disabled them); returns how many. */
  async revokeAllFor(sub: string): Promise<number> {
    return revokeSessionsFor(this.#db, sub, this.#clock());
  }

  #hashOf(cookieValue: string | undefined): string | null {
    return typeof cookieValue === 'string' && SESSION_ID_FORM.test(cookieValue) ? hashSecret(cookieValue) : null;
  }

  #isLive(row: SessionRow, at: Date): boolean {
    const now = at.getTime();
    if (row.revoked_at !== null) return false;
    if (row.expires_at.getTime() <= now) return false;
    return row.last_seen_at.getTime() + this.#config.flow.sessionIdleTtl * 1000 > now;
  }

  #newRow(input: NewSession) {
    const id = generateToken();
    const now = this.#clock();
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

  #cookie(id: string): CookieInstruction {
    // The cookie lives as long as the session can; idle expiry is enforced on the server.
    return {
      name: this.cookieName,
      value: id,
      options: cookieOptions(this.#config, this.#config.flow.sessionAbsoluteTtl),
    };
  }
}
