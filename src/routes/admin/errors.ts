import { ClientMetadataError } from '../../oauth/client-metadata.js';
import { OAuthError } from '../../oauth/errors.js';
import { KeyOperationError } from '../../keys/errors.js';
import { ClientServiceError } from '../../services/client-service.js';

/**
 * Turns a refusal from the services the admin API drives into its JSON error: invalid metadata is
 * invalid_client_metadata / invalid_redirect_uri naming the field (400), an unknown id not_found (404),
 * a refused operation conflict (409). Anything else is left to the error handler (an opaque 500).
 */
export function adminError(err: unknown): unknown {
  if (err instanceof ClientMetadataError) return new OAuthError(err.code, `${err.field}: ${err.reason}`);
  if (err instanceof ClientServiceError) return new OAuthError(err.kind, err.message);
  if (err instanceof KeyOperationError)
    return new OAuthError(/^no signing key/.test(err.message) ? 'not_found' : 'conflict', err.message);
  return err;
}

/** Runs a service call, rethrowing its refusals as admin API errors. */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw adminError(err);
  }
}
