/**
 * What a refusal means to whoever must answer for it, independent of protocol: the edge maps each
 * code to a status and an RFC error in one table (src/http/errors.ts). Never classify an error by
 * matching its message.
 */
export type DomainErrorCode =
  /** The thing asked for does not exist. */
  | 'not_found'
  /** The thing exists, but the operation contradicts its state (already retired, not editable…). */
  | 'conflict'
  /** Input from a caller is malformed or not allowed (a bad metadata field, a bad argument). */
  | 'invalid_input'
  /** A dependency Gatehouse needs is not there right now (database, host keys, a remote document). */
  | 'unavailable'
  /** The operator's configuration or files are wrong: fix them and restart. */
  | 'misconfigured';

export interface DomainErrorOptions {
  /** Which input field is wrong, when one is (`redirect_uris`, `--scope`). */
  field?: string;
  /** Logged, never sent: what an operator needs to diagnose, which a caller must not see. */
  detail?: string;
  cause?: unknown;
}

/** A refusal from a domain, service or storage unit; its message is safe to show to the caller. */
export class DomainError extends Error {
  readonly field: string | undefined;
  readonly detail: string | undefined;

  constructor(
    readonly code: DomainErrorCode,
    message: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.field = options.field;
    this.detail = options.detail;
  }
}
