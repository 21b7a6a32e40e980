/**
 * Opening a stored message (protocol.md §5.5): each check in order, recorded as it runs,
 * so the inspector can show what was checked and the message list can say why one failed.
 * A failure a retry can mend (the key has not arrived yet) is retried by itself with
 * backoff; nothing is ever dropped from the list.
 */

import { b64decode, b64encode } from "../crypto/bytes.js";
import { parseCertificate } from "../crypto/certs.js";
import { fingerprint } from "../crypto/fingerprints.js";
import { signingAlgorithmOf } from "../crypto/signing.js";
import { reasonFor } from "./reasons.js";

const KEY_RETRIES = 5;

/** The checks of one message, in the order they run; a failure code maps to the check it fails. */
const CHECKS = [
  { name: "certificate", codes: ["untrusted_certificate", "certificate_revoked"], label: (m) => `Certificate issued by the SecureChat CA to ${m.sender}, valid when stored, not revoked` },
  { name: "pin", codes: ["key_changed"], label: (m) => `Signing key is the one pinned for ${m.sender}` },
  { name: "sequence", codes: ["replayed"], label: () => "Sequence number is new for the sending device" },
  { name: "member", codes: ["not_member"], label: (m) => `${m.sender} was a member in epoch ${m.epoch}` },
  { name: "signature", codes: ["bad_signature"], label: () => "Signature over header, IV and ciphertext verifies" },
  { name: "epoch_key", codes: ["no_epoch_key", "key_does_not_open"], label: (m) => `I hold the key of epoch ${m.epoch}` },
  { name: "decrypt", codes: ["decrypt_failed"], label: () => "AES-256-GCM tag verifies: nothing was altered" },
  { name: "body", codes: ["bad_body"], label: () => "Content is a version-1 message" },
];

export class MessageOpener {
  constructor(session) {
    this.session = session;
    this.retries = new Map(); // message key -> attempts so far
  }

  /** A message model for a stored message, before it is opened. */
  blank(message) {
    return {
      key: `o-${message.order}`,
      order: message.order,
      clientId: message.client_id,
      sender: message.sender,
      mine: message.sender === this.session.me,
      text: null,
      timestampMs: message.timestamp_ms,
      sentAt: message.sent_at,
      epoch: message.epoch,
      status: "sending",
      problem: null,
      signer: { verified: false, keyChanged: false },
      delivery: null,
      raw: message,
      checks: [],
    };
  }

  /** Run every check; the model ends "ok", "retrying" or "failed" with a reason. */
  async open(view, model) {
    const session = this.session;
    const message = model.raw;
    const passed = [];
    try {
      const at = message.sent_at ? new Date(message.sent_at) : null;
      const { body, certificate } = await session.trust.certificate(message.sender_serial, {
        username: message.sender,
        kind: "signing",
        at,
      });
      if (body.kind !== "signing") throw Object.assign(new Error("Not a signing certificate."), { code: "untrusted_certificate" });
      passed.push("certificate");
      model.certificate = { body, certificate };
      await session.trust.checkPin(message.sender, "signing", certificate.spki);
      passed.push("pin");
      const chain = session.chain(view.id);
      if (!chain.epochKeys.has(message.epoch)) await session.epochs.fetch(view.id, [message.epoch]);
      const opened = await chain.decrypt(message, { senderSpki: certificate.spki });
      model.text = opened.text;
      model.status = "ok";
      model.problem = null;
      model.checks = CHECKS.map((check) => ({ name: check.name, ok: true, detail: check.label(message) }));
    } catch (error) {
      this.failed(view, model, error, passed);
    }
    model.signer = {
      verified: session.trust.isVerified(message.sender),
      keyChanged: session.trust.changes.has(message.sender),
    };
  }

  failed(view, model, error, passed) {
    const message = model.raw;
    const code = error.code ?? "internal_error";
    const failing = CHECKS.findIndex((check) => check.codes.includes(code));
    model.checks = CHECKS.map((check, index) => ({
      name: check.name,
      ok: passed.includes(check.name) || (failing > index && failing !== -1) ? true : index === failing ? false : null,
      detail: check.label(message),
    }));
    model.text = null;
    if (code === "no_epoch_key") {
      const attempts = this.retries.get(model.key) ?? 0;
      if (attempts < KEY_RETRIES) {
        model.status = "retrying";
        model.problem = { code, reason: reasonFor(code, { epoch: message.epoch }) };
        this.retries.set(model.key, attempts + 1);
        setTimeout(() => this.session.enqueue(() => this.retry(view, model)), 2000 * 2 ** attempts);
        return;
      }
      model.status = "failed";
      model.problem = { code: "key_never_arrived", reason: reasonFor("key_never_arrived", { epoch: message.epoch }) };
      return;
    }
    model.status = "failed";
    model.problem = { code, reason: reasonFor(code, { epoch: message.epoch, sender: message.sender }) };
  }

  async retry(view, model) {
    if (model.status !== "retrying" || !this.session.state.conversations.has(view.id)) return;
    await this.open(view, model);
    this.session.emit("conversation", view.id);
  }

  /** Open again the failed or waiting messages that `predicate` selects (after a key arrived or a key change was confirmed). */
  async reopen(predicate) {
    for (const view of this.session.state.conversations.values()) {
      let changed = false;
      for (const model of view.messages) {
        if (!model.raw || model.status === "ok" || !predicate(model)) continue;
        await this.open(view, model);
        changed = true;
      }
      if (changed) this.session.emit("conversation", view.id);
    }
  }

  /** What the inspector shows: the wire fields, the signer's certificate and chain, each check. */
  async inspect(view, model) {
    const session = this.session;
    const message = model.raw ?? { ...model.body, sender: session.me, order: null };
    const wrapped = session.epochs.myWrappedKey(view.id, message.epoch);
    const algorithm = model.certificate
      ? await signingAlgorithmOf(model.certificate.certificate.spki)
      : session.keys.signing.algorithm;
    const fields = [
      { label: "Order", value: message.order == null ? "not stored yet" : String(message.order) },
      { label: "Epoch", value: String(message.epoch) },
      { label: "Sender", value: message.sender },
      { label: "Sender certificate serial", value: message.sender_serial },
      { label: "Device", value: message.device },
      { label: "Sequence", value: String(message.sequence) },
      { label: "Sender's timestamp (claimed, signed)", value: new Date(message.timestamp_ms).toISOString() },
      { label: "Stored by the server at", value: message.sent_at ?? "" },
      { label: "IV (12 bytes, base64)", value: message.iv },
      { label: "Ciphertext ‖ GCM tag (base64)", value: message.ciphertext },
      { label: `My wrapped key for epoch ${message.epoch} (RSA-OAEP, base64)`, value: wrapped ? b64encode(wrapped) : "not held" },
      { label: "Signature algorithm", value: algorithm },
      { label: "Signature (base64)", value: message.signature },
    ];
    const result = { fields, certificate: null, chain: [], checks: model.checks ?? [] };
    const held = model.certificate ?? (model.mine ? { body: session.keys.signing.certificate } : null);
    if (held?.body?.certificate) {
      const parsed = parseCertificate(b64decode(held.body.certificate));
      result.certificate = {
        subject: parsed.subject,
        serial: parsed.serial,
        issuer: parsed.issuer,
        notBefore: parsed.notBefore.toISOString(),
        notAfter: parsed.notAfter.toISOString(),
        fingerprint: await fingerprint(parsed.spki),
        pem: held.body.pem ?? "",
      };
      result.chain = [{ subject: parsed.subject, serial: parsed.serial, role: "signer" }];
      const ca = session.trust.authorities.map((der) => parseCertificate(der)).find((c) => c.subject === parsed.issuer);
      if (ca) result.chain.push({ subject: ca.subject, serial: ca.serial, role: "certificate authority" });
    }
    if (model.mine && !model.raw) {
      result.checks = [{ name: "signature", ok: true, detail: "Signed and encrypted here, by me" }];
    }
    return result;
  }
}
