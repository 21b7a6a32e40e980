/**
 * Key records (protocol.md §5): verify each one with every check before its key is used,
 * report a key that does not open, make the next key in members origin for exactly the
 * members the rule allows, and sign membership statements. The same steps as the Python
 * client's ChatClient (`_accept_epoch`, `_make_epoch`); the rule itself is in
 * crypto/membership.js and engine/conversation.js.
 */

import { b64decode, b64encode, sha256, equalBytes } from "../crypto/bytes.js";
import { distributionRecord } from "../crypto/encoding.js";
import { Statement, keyHashes } from "../crypto/membership.js";
import { sign } from "../crypto/signing.js";
import { newEpochKey, oaepEncrypt } from "../crypto/wrapping.js";
import { CryptoError } from "../crypto/errors.js";
import { SERVER_NAME } from "./trust.js";
import { reasonFor } from "./reasons.js";

/** Failures of a members-mode record that another member's new key can repair (§5.4). */
const REPORTABLE = new Set(["key_does_not_open", "bad_distribution"]);

export class EpochKeeper {
  constructor(session) {
    this.session = session;
    this.intended = new Map(); // conversation -> members I named at creation (epoch 1)
    this.held = new Map(); // conversation -> key request waiting on a key change
    this.records = new Map(); // conversation -> Map(epoch -> record), for the inspector
    this.waiters = new Set();
  }

  get trust() {
    return this.session.trust;
  }

  /** Re-check everything waiting for a key or an intended member list. */
  wake() {
    for (const check of [...this.waiters]) check();
  }

  /** Resolve once the conversation holds a key (waits while a members-mode key is made). */
  waitForKey(id, timeoutMs) {
    const chain = this.session.chain(id);
    if (chain.currentEpoch && !this.session.state.conversations.get(id)?.epochPending) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (chain.currentEpoch) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        if (chain.currentEpoch) resolve();
        else reject(new CryptoError("no_epoch_key", "No key for this conversation yet."));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Verify a record and keep my key; live members-mode failures are reported (§5.4). */
  async accept(record, { live }) {
    const chain = this.session.chain(record.conversation);
    try {
      await this.verifyAndAccept(chain, record);
    } catch (error) {
      if (live && REPORTABLE.has(error.code) && chain.keyOrigin === "members") {
        await this.report(record.conversation, record.epoch);
      }
      this.session.notice("error", reasonFor(error.code, { epoch: record.epoch }));
      if (error.code !== "key_does_not_open") return;
    }
    const view = this.session.state.conversations.get(record.conversation);
    if (view && record.epoch >= (view.epoch ?? 0)) {
      view.epoch = record.epoch;
      view.epochPending = false;
    }
    this.wake();
  }

  async verifyAndAccept(chain, record) {
    const at = record.created ? new Date(record.created) : null;
    if (record.key_origin === "members" && record.previous_epoch) {
      await this.fillChain(chain, record.epoch, record.previous_epoch);
    }
    let certificate;
    let statements = [];
    if (record.signer === "server") {
      const found = await this.trust.certificate(record.signer_serial, { username: SERVER_NAME, kind: "signing", at });
      if (found.body.kind !== "server-signing") throw new CryptoError("bad_distribution", "Not signed by the server's key.");
      certificate = found.certificate;
    } else {
      const found = await this.trust.certificate(record.signer_serial, { username: record.signer, kind: "signing", at });
      if (found.body.kind !== "signing") throw new CryptoError("bad_distribution", "Not a member's signing key.");
      certificate = found.certificate;
      await this.trust.checkPin(record.signer, "signing", certificate.spki);
      statements = await this.verifiedStatements(chain.id, record.changes ?? []);
      await this.checkWrapTargets(record.members, statements, at);
    }
    await chain.acceptEpoch(record, {
      me: this.session.me,
      myEncryptionKey: this.session.keys.encryption.privateKey,
      signerSpki: certificate.spki,
      signerIsServer: record.signer === "server",
      statements,
    });
    if (!this.records.has(chain.id)) this.records.set(chain.id, new Map());
    this.records.get(chain.id).set(record.epoch, record);
  }

  /** Fetch the records between the newest I verified and `epoch`, oldest first. */
  async fillChain(chain, epoch, previous) {
    const newest = chain.newest;
    if (!newest || chain.epochs.has(previous) || epoch <= newest.number) return;
    const missing = [];
    for (let n = newest.number + 1; n < epoch; n += 1) if (!chain.epochs.has(n)) missing.push(n);
    if (!missing.length) return;
    const listed = await this.session.request("epoch.get", { conversation: chain.id, epochs: missing.slice(-50) });
    for (const link of listed.epochs) {
      if (!chain.epochs.has(link.epoch)) await this.verifyAndAccept(chain, link);
    }
  }

  /** Fetch and verify the records of `numbers` (e.g. the epoch of a message I cannot open yet). */
  async fetch(id, numbers) {
    const listed = await this.session.request("epoch.get", { conversation: id, epochs: numbers });
    for (const record of listed.epochs) await this.accept(record, { live: false });
    return listed.epochs.length;
  }

  /** Membership statements whose actor's certificate, pin and signature check out. */
  async verifiedStatements(conversationId, given) {
    const statements = [];
    for (const data of given) {
      let statement;
      try {
        statement = Statement.fromJSON(data);
        statement.signedBytes(conversationId);
      } catch {
        throw new CryptoError("bad_statement", "A membership statement is malformed.");
      }
      const { body, certificate } = await this.trust.certificate(statement.actorSerial, {
        username: statement.actor,
        kind: "signing",
      });
      if (body.kind !== "signing") throw new CryptoError("bad_statement", "Not signed with a signing key.");
      await this.trust.checkPin(statement.actor, "signing", certificate.spki);
      try {
        await statement.verify(conversationId, certificate.spki);
      } catch {
        throw new CryptoError("bad_statement", "A statement's signature fails.");
      }
      statements.push(statement);
    }
    return statements;
  }

  /** Each wrapped key goes to the member's own certified key (the one an addition names, else the pinned one). */
  async checkWrapTargets(members, statements, at = null) {
    const added = new Map(statements.filter((s) => s.action === "add").map((s) => [s.subject, s]));
    const verified = new Map();
    for (const member of members) {
      if (!member.serial) continue;
      const name = member.username;
      const { body, certificate } = await this.trust.certificate(member.serial, { username: name, kind: "encryption", at });
      if (body.kind !== "encryption") throw new CryptoError("bad_distribution", `${name}'s key is not an encryption key.`);
      const addition = added.get(name);
      if (addition && !equalBytes(await sha256(certificate.spki), addition.subjectEncryptionSha256)) {
        throw new CryptoError("bad_distribution", `${name}'s key is not the one invited.`);
      }
      await this.trust.checkPin(name, "encryption", certificate.spki);
      verified.set(name, certificate);
    }
    return verified;
  }

  async report(conversation, epoch) {
    try {
      await this.session.request("epoch.report", { conversation, epoch });
    } catch (error) {
      this.session.notice("error", `Could not report the broken key: ${error.code}`);
    }
  }

  /** Members origin: make the next key here, for exactly the members the rule allows. */
  async make(request) {
    this.held.delete(request.conversation);
    try {
      await this.makeKey(request);
    } catch (error) {
      if (error.code === "key_changed") this.held.set(request.conversation, request);
      throw error;
    }
  }

  async makeKey(request) {
    const chain = this.session.chain(request.conversation);
    chain.fixKeyOrigin("members");
    const { epoch, previous_epoch: previous } = request;
    if (previous) await this.fillChain(chain, epoch, previous);
    const statements = await this.verifiedStatements(chain.id, request.changes);
    let { members: expected, roster } = chain.expectedTransition({
      epoch,
      previous,
      signer: this.session.me,
      statements,
    });
    if (previous === 0) expected = await this.intendedMembers(chain);
    if (!expected || roster == null) throw new CryptoError("chain_gap", "I cannot check who may have this key.");
    const listed = new Set(request.members.map((m) => m.username));
    if (listed.size !== expected.size || [...listed].some((name) => !expected.has(name))) {
      throw new CryptoError("members_mismatch", "Asked to give a key to someone no member added.");
    }
    const targets = await this.checkWrapTargets(request.members, statements);
    const key = newEpochKey();
    const members = [];
    for (const m of request.members) {
      const wrappedKey = m.serial ? await oaepEncrypt(targets.get(m.username).spki, key) : new Uint8Array();
      members.push({ username: m.username, serial: m.serial, wrappedKey });
    }
    const keys = this.session.keys;
    const data = await distributionRecord({
      conversationId: chain.id,
      epoch,
      previousEpoch: previous,
      rosterEpoch: roster,
      keyOrigin: "members",
      signer: this.session.me,
      signerSerial: keys.signing.serial,
      members,
      changes: statements.map((s) => s.signedBytes(chain.id)),
    });
    await this.session.request("epoch.submit", {
      conversation: chain.id,
      epoch,
      signer_serial: keys.signing.serial,
      signature: b64encode(await sign(keys.signing, data)),
      members: members.map((m) => ({ username: m.username, serial: m.serial, wrapped_key: b64encode(m.wrappedKey) })),
    });
  }

  /** Epoch 1 of a conversation I created goes to the members I named; the request may overtake the reply. */
  intendedMembers(chain) {
    if (chain.createdBy && chain.createdBy !== this.session.me) return Promise.resolve(null);
    return new Promise((resolve) => {
      const check = () => {
        if (this.intended.has(chain.id)) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(this.intended.get(chain.id));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(null);
      }, 10_000);
      this.waiters.add(check);
      check();
    });
  }

  /** Key requests held back by a key change, made once the user confirmed it. */
  async retryHeld() {
    for (const request of [...this.held.values()]) await this.make(request);
  }

  /** The `statement` a members-mode membership request carries (none in server origin). */
  async statementFields(conversationId, action, subject) {
    const chain = this.session.chain(conversationId);
    if (chain.keyOrigin !== "members") return {};
    const hashes = action === "add" ? await this.checkedKeyHashes(subject) : [new Uint8Array(), new Uint8Array()];
    const keys = this.session.keys;
    const statement = await Statement.create({
      conversationId,
      signingKey: keys.signing,
      action,
      subject,
      actor: this.session.me,
      actorSerial: keys.signing.serial,
      rosterEpoch: chain.rosterEpoch,
      keyHashes: hashes,
    });
    return { statement: statement.toJSON() };
  }

  /** SHA-256 of `username`'s certified signing and encryption SPKIs, consistent with my pins. */
  async checkedKeyHashes(username) {
    const body = await this.session.http.getJson(`/api/keys/users/${encodeURIComponent(username)}/`);
    const spkis = [];
    for (const kind of ["signing", "encryption"]) {
      if (!body[kind]) throw new CryptoError("no_active_keys", `${username} has no ${kind} key.`);
      const certificate = await this.trust.verifyObject(body[kind], { username, kind });
      await this.trust.checkPin(username, kind, certificate.spki);
      spkis.push(certificate.spki);
    }
    return keyHashes(spkis[0], spkis[1]);
  }

  /** Members origin: the invitation must be the inviter's own signed addition of me, naming my keys. */
  async checkInvitation(invitation) {
    const [statement] = await this.verifiedStatements(invitation.conversation, [invitation.statement]);
    const keys = this.session.keys;
    const [signingHash, encryptionHash] = await keyHashes(keys.signing.spki, keys.encryption.spki);
    const ok =
      statement.action === "add" &&
      statement.subject === this.session.me &&
      statement.actor === invitation.inviter &&
      equalBytes(statement.subjectSigningSha256, signingHash) &&
      equalBytes(statement.subjectEncryptionSha256, encryptionHash);
    if (!ok) throw new CryptoError("bad_statement", "The invitation is not the inviter's addition of me.");
  }

  /** `key.changed`: look at the user's new keys now, so a verified contact's change is asked about before the next send. */
  async noticeKeyChange(username) {
    const body = await this.session.http.getJson(`/api/keys/users/${encodeURIComponent(username)}/`);
    for (const kind of ["signing", "encryption"]) {
      if (!body[kind]) continue;
      const certificate = await this.trust.verifyObject(body[kind], { username, kind });
      try {
        await this.trust.checkPin(username, kind, certificate.spki);
      } catch (error) {
        if (error.code !== "key_changed") throw error;
      }
    }
  }

  /** The record of `epoch`, if verified here, and my wrapped key in it (for the inspector). */
  myWrappedKey(conversationId, epoch) {
    const record = this.records.get(conversationId)?.get(epoch);
    const mine = record?.members.find((m) => m.username === this.session.me);
    return mine?.wrapped_key ? b64decode(mine.wrapped_key) : null;
  }
}
