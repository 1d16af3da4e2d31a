/** Row of `dpop_proofs`: a DPoP proof the token endpoint accepted, kept until its iat leaves the window (RFC 9449 §11.1). */
export interface DpopProofTable {
  /** SHA-256 of the proof key's thumbprint and the proof's jti. */
  proof_hash: string;
  expires_at: Date;
}
