// The one error type of the browser's crypto and trust code. Its `code` is the same
// string the Python side uses (cryptokit.errors.CryptoError, the client's TrustError,
// cryptokit.membership.MembershipError), so both clients name a refusal alike and the UI
// can branch on it. Messages are for people and never carry keys or plaintext.

/** A refused key, certificate, signature, record, statement or message, with a stable code. */
export class CryptoError extends Error {
  /**
   * @param {string} code stable, machine-readable (`bad_signature`, `members_mismatch`, ...)
   * @param {string} message for people; never a secret
   */
  constructor(code, message) {
    super(message);
    this.name = "CryptoError";
    this.code = code;
  }
}
