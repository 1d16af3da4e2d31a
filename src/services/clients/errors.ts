import { DomainError } from '../../lib/errors.js';

/** A change the client services refuse: no such client, or one that conflicts with the client's state. */
export class ClientServiceError extends DomainError {
  declare readonly code: 'not_found' | 'conflict';

  constructor(code: 'not_found' | 'conflict', message: string) {
    super(code, message);
  }
}

/** The refusal for a client id that names no client. */
export function clientNotFound(clientId: string): ClientServiceError {
  return new ClientServiceError('not_found', `no such client: ${clientId}`);
}
