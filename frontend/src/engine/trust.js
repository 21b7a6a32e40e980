/**
 * What this browser trusts (protocol.md §2.2, §5.5): the CA certificates the server
 * publishes, certificates fetched by serial and checked before use, revocations, and
 * each contact's pinned signing and encryption keys (trust on first use), plus the
 * contacts this user marked as verified after comparing safety numbers. Pins and marks
 * persist in IndexedDB, per user of this browser.
 */

import { b64decode } from "../crypto/bytes.js";
import { CryptoError } from "../crypto/errors.js";
import { verifyCertificate } from "../crypto/certs.js";
import { fingerprint } from "../crypto/fingerprints.js";

export const SERVER_NAME = "SecureChat server";

/** A contact's key differs from the pinned one: refused until the user confirms it. */
export class KeyChanged extends CryptoError {
  constructor(username, kind, oldFingerprint, newFingerprint) {
    super("key_changed", `${username}'s ${kind} key changed.`);
    this.username = username;
    this.kind = kind;
    this.oldFingerprint = oldFingerprint;
    this.newFingerprint = newFingerprint;
  }
}

export class TrustStore {
  /**
   * @param {{http: object, store: {load: Function, save: Function}, authority: object}} options
   *   authority: GET /api/keys/ca/; store: loadState/saveState bound to this user.
   */
  constructor({ http, store, authority }) {
    this.http = http;
    this.store = store;
    this.authorities = authority.certificates.map((c) => b64decode(c));
    this.revoked = new Set();
    this.cache = new Map(); // serial -> {body, certificate}
    this.pins = {}; // username -> {signing, encryption} fingerprints
    this.verified = {}; // username -> signing fingerprint marked verified
    this.changes = new Map(); // username -> {kind, oldFingerprint, newFingerprint, spki}
  }

  async load() {
    this.pins = (await this.store.load("pins")) ?? {};
    this.verified = (await this.store.load("verified")) ?? {};
    await this.refreshRevocations();
  }

  async refreshRevocations() {
    const listed = await this.http.getJson("/api/keys/revocations/");
    this.revoked = new Set(listed.revoked.map((entry) => entry.serial));
  }

  /**
   * The certificate object and parsed certificate for a serial, verified (CA, serial,
   * profile, validity at `at`, revocation) before use.
   */
  async certificate(serial, { username, kind, at = null }) {
    if (!this.cache.has(serial)) {
      const body = await this.http.getJson(`/api/keys/certificates/${encodeURIComponent(serial)}/`);
      this.cache.set(serial, { body });
    }
    const entry = this.cache.get(serial);
    if (entry.body.status === "revoked") this.revoked.add(serial);
    const certificate = await verifyCertificate(b64decode(entry.body.certificate), {
      authorities: this.authorities,
      username,
      kind,
      serial,
      at,
      revoked: this.revoked,
    });
    return { body: entry.body, certificate };
  }

  /** Verify a certificate object given by the server (e.g. GET /api/keys/users/<name>/). */
  async verifyObject(body, { username, kind }) {
    return verifyCertificate(b64decode(body.certificate), {
      authorities: this.authorities,
      username,
      kind,
      serial: body.serial,
      at: null,
      revoked: this.revoked,
    });
  }

  /** Pin on first sight; a different key throws KeyChanged (and is remembered for the UI). */
  async checkPin(username, kind, spki) {
    const seen = await fingerprint(spki);
    const pinned = (this.pins[username] ??= {});
    const old = pinned[kind];
    if (old !== undefined && old !== seen) {
      this.changes.set(username, { kind, oldFingerprint: old, newFingerprint: seen, spki });
      throw new KeyChanged(username, kind, old, seen);
    }
    if (old === undefined) {
      pinned[kind] = seen;
      await this.store.save("pins", this.pins);
    }
    return seen;
  }

  /** My own keys are the pins for my name, always. */
  async pinOwn(username, signingSpki, encryptionSpki) {
    this.pins[username] = {
      signing: await fingerprint(signingSpki),
      encryption: await fingerprint(encryptionSpki),
    };
    await this.store.save("pins", this.pins);
  }

  /** The user compared safety numbers and accepts `username`'s current keys (re-pinned). */
  async acceptKeys(username, pins) {
    this.pins[username] = { ...this.pins[username], ...pins };
    this.changes.delete(username);
    // A verification was of the old key: it does not carry over to a new one.
    if (this.verified[username] && this.verified[username] !== this.pins[username].signing) {
      delete this.verified[username];
      await this.store.save("verified", this.verified);
    }
    await this.store.save("pins", this.pins);
  }

  isVerified(username) {
    const pinned = this.pins[username]?.signing;
    return Boolean(pinned) && this.verified[username] === pinned && !this.changes.has(username);
  }

  async markVerified(username, signingFingerprint) {
    this.verified[username] = signingFingerprint;
    await this.store.save("verified", this.verified);
  }

  async unmarkVerified(username) {
    delete this.verified[username];
    await this.store.save("verified", this.verified);
  }
}
