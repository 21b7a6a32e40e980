/**
 * Why a message or key could not be used, in words a user can act on: a closed list,
 * keyed by the protocol's codes (protocol.md §5.5). Anything not listed is shown with
 * its code, never hidden.
 */

const REASONS = {
  not_member_then: () => "You were not a member when these were sent",
  no_epoch_key: (d) => `Key for epoch ${d.epoch} not received yet — retrying`,
  key_never_arrived: (d) => `The key for epoch ${d.epoch} never arrived`,
  bad_signature: () => "Signature does not verify",
  certificate_revoked: () => "Sender's certificate revoked",
  untrusted_certificate: () => "Sender's certificate is not valid (not from our CA, or not valid then)",
  key_changed: (d) => `${d.sender}'s key changed — compare safety numbers to read this`,
  not_member: (d) => `${d.sender} was not a member in epoch ${d.epoch}`,
  replayed: () => "Replayed: this sender's device already used that sequence number",
  decrypt_failed: () => "Does not decrypt: the ciphertext was altered",
  bad_body: () => "The decrypted content is not a message this app understands",
  key_does_not_open: (d) => `My key for epoch ${d.epoch} does not open — a new key was requested`,
  bad_distribution: (d) => `The key record for epoch ${d.epoch} was refused (bad signature)`,
  members_mismatch: (d) => `The key record for epoch ${d.epoch} was refused: it changes members without a member's signature`,
  origin_changed: () => "Refused: this conversation's key origin changed",
  signer_not_member: (d) => `The key record for epoch ${d.epoch} was made by someone who may not make it`,
  chain_gap: (d) => `The key record for epoch ${d.epoch} does not follow the ones I verified`,
  send_failed: (d) => `Not sent: ${d.message}`,
};

/** A human sentence for `code`, with details such as {epoch, sender, message}. */
export function reasonFor(code, details = {}) {
  const make = REASONS[code];
  return make ? make(details) : `Refused (${code})`;
}
