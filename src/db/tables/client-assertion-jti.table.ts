/** Row of `client_assertion_jtis`: a client assertion already used (RFC 7523 §3), kept until it expires. */
export interface ClientAssertionJtiTable {
  /** SHA-256 of the client_id and the assertion's jti. */
  jti_hash: string;
  expires_at: Date;
}
