import { DomainError, type DomainErrorOptions } from '../lib/errors.js';

/**
 * A key setup that can never work until an operator fixes it (unreadable key file, wrong
 * KEY_ENCRYPTION_SECRET): startup stops with this message instead of retrying.
 */
export class KeyConfigurationError extends DomainError {
  constructor(message: string, options: DomainErrorOptions = {}) {
    super('misconfigured', message, options);
  }
}

/** A stored private key that does not decrypt: the secret differs, or the row was altered. */
export class KeyDecryptionError extends KeyConfigurationError {}

/**
 * A key operation refused as asked: `not_found` (no key with that kid), `conflict` (a rotation already
 * pending, the active key retired without `immediately`, keys supplied as files).
 */
export class KeyOperationError extends DomainError {
  constructor(code: 'not_found' | 'conflict', message: string, options: DomainErrorOptions = {}) {
    super(code, message, options);
  }
}
