/**
 * A key setup that can never work until an operator fixes it (unreadable key file, wrong
 * KEY_ENCRYPTION_SECRET): startup stops with this message instead of retrying.
 */
export class KeyConfigurationError extends Error {
  override name = 'KeyConfigurationError';
}

/** A stored private key that does not decrypt: the secret differs, or the row was altered. */
export class KeyDecryptionError extends KeyConfigurationError {
  override name = 'KeyDecryptionError';
}

/** A key operation refused as asked (unknown kid, a rotation already pending, keys supplied as files). */
export class KeyOperationError extends Error {
  override name = 'KeyOperationError';
}
