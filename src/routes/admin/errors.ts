import { DomainError } from '../../lib/errors.js';
import { ClientMetadataError } from '../../oauth/client-metadata.js';
import { ClientServiceError } from '../../services/client-service.js';

/**
 * Until the client units throw DomainErrors of their own, their two refusals are restated as one by
 * their typed fields (never their message); the error handler's one table (src/http/errors.ts) answers
 * it. Every other error, DomainErrors included, passes through untouched.
 */
export function adminError(err: unknown): unknown {
  if (err instanceof ClientMetadataError)
    return new DomainError('invalid_input', err.message, { field: err.field, cause: err });
  if (err instanceof ClientServiceError) return new DomainError(err.kind, err.message, { cause: err });
  return err;
}

/** Runs a client service call, restating its refusals as DomainErrors. */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw adminError(err);
  }
}
