// One conversation as this browser sees it: the verified chain of key records (who was a
// member in each epoch), epoch keys, encryption and decryption, replay and duplicate
// detection. The port of client/securechat_client/conversation.py's ConversationState,
// with the same error codes. Pure logic, no I/O: certificates, pins and statement
// signatures are checked by the caller before it hands records and statements in here
// (protocol.md §5.5 points 2 and 3 are the caller's, 1, 3's membership rule, 4 and 5 are
// here).
//
// Methods that touch WebCrypto are async. Calls for one conversation must not overlap
// (the engine handles one record or message of a conversation at a time): each method
// checks, then commits without awaiting in between, so an overlap cannot corrupt the
// state, but the second of two overlapping calls may see the chain before the first's.

import { b64decode, b64encode } from "../crypto/bytes.js";
import { decodeBody, encodeBody } from "../crypto/body.js";
import { KEY_ORIGINS, distributionRecord, messageHeader, messageSignedBytes } from "../crypto/encoding.js";
import { CryptoError } from "../crypto/errors.js";
import { nextMembers, rosterAfter } from "../crypto/membership.js";
import { sign, verify } from "../crypto/signing.js";
import { aesGcmDecrypt, aesGcmEncrypt, importEpochKey, oaepDecrypt } from "../crypto/wrapping.js";

const STATE_VERSION = 1;

/** @typedef {import("../crypto/membership.js").Statement} Statement */

/**
 * What this client verified about one epoch.
 * @typedef {{number: number, previous: number, roster: number, signer: string,
 *   members: Set<string>}} EpochView members: every member, with or without a key
 */

/**
 * A decrypted, verified message.
 * @typedef {{conversation: string, order: number, epoch: number, sender: string,
 *   text: string, timestampMs: number, sequence: number}} DecryptedMessage
 */

function sameView(a, b) {
  return (
    a.number === b.number &&
    a.previous === b.previous &&
    a.roster === b.roster &&
    a.signer === b.signer &&
    a.members.size === b.members.size &&
    [...a.members].every((name) => b.members.has(name))
  );
}

/** (sender, device) as one Map key; JSON keeps the two parts apart whatever they hold. */
function counterKey(sender, device) {
  return JSON.stringify([sender, device]);
}

export class ConversationState {
  /**
   * @param {string} id the conversation id (lowercase UUID)
   * @param {{keyOrigin?: "server"|"members"|null, createdBy?: string}} [known]
   */
  constructor(id, { keyOrigin = null, createdBy = "" } = {}) {
    this.id = id;
    /** Fixed once known: never changes for a conversation (protocol.md §5.1). */
    this.keyOrigin = keyOrigin;
    this.createdBy = createdBy;
    /** The signer of the first record, once verified (members origin). */
    this.owner = "";
    /** @type {Map<number, EpochView>} */
    this.epochs = new Map();
    /** @type {Map<number, CryptoKey>} non-extractable AES-256-GCM keys */
    this.epochKeys = new Map();
    /** Of this device (this tab's session). */
    this.lastSequence = 0;
    this.lastOrder = 0;
    /** @type {Set<number>} */
    this.seenOrders = new Set();
    /** @type {Map<string, number>} (sender, device) -> last sequence accepted */
    this.senderSequences = new Map();
    /** @type {Map<number, {record: object, statements: object[]}>} verified records, as received */
    this.records = new Map();
    /** Records restored by fromJSON, waiting to be verified again (see replay()). */
    this.pendingRecords = [];
  }

  // --- the key-origin and membership rules (protocol.md §5) -----------------------

  /**
   * The first origin this client hears of is the conversation's for good.
   * @param {"server"|"members"} origin
   * @throws {CryptoError} `origin_changed`, or `bad_distribution` for an unknown origin
   */
  fixKeyOrigin(origin) {
    this.#checkOrigin(origin);
    if (this.keyOrigin === null) {
      // Stored for good, so only a real origin: a missing field must not fix "undefined".
      if (!KEY_ORIGINS.includes(origin)) throw new CryptoError("bad_distribution", "Unknown key origin.");
      this.keyOrigin = origin;
    }
  }

  #checkOrigin(origin) {
    if (this.keyOrigin !== null && origin !== this.keyOrigin) {
      throw new CryptoError(
        "origin_changed",
        `This conversation's keys come from its ${this.keyOrigin}; a record claims ${origin}.`,
      );
    }
  }

  /** @returns {EpochView|null} the verified epoch with the highest number */
  get newest() {
    if (this.epochs.size === 0) return null;
    return this.epochs.get(Math.max(...this.epochs.keys()));
  }

  /** @returns {number} the roster a new membership statement is made against (0: none yet) */
  get rosterEpoch() {
    return this.newest ? this.newest.roster : 0;
  }

  /**
   * The members and roster a members-origin record must name, from the records this
   * client verified; `{members: null, roster: null}` when there is no previous record to
   * check against (its first record, trusted on first use: protocol.md §5.5). Refuses a
   * signer who may not make the key.
   * @param {{epoch: number, previous: number, signer: string, statements: Statement[]}} link
   * @returns {{members: Set<string>|null, roster: number|null}}
   * @throws {CryptoError} `bad_distribution`, `signer_not_member`, `chain_gap`, and the
   *   membership rule's `stale_statement`, `bad_statement`, `not_owner`
   */
  expectedTransition({ epoch, previous, signer, statements }) {
    if (previous === 0) {
      if (epoch !== 1 || statements.length) throw new CryptoError("bad_distribution", "Only epoch 1 starts a chain.");
      if (signer !== (this.owner || this.createdBy)) throw new CryptoError("signer_not_member", `${signer} did not create it.`);
      return { members: null, roster: 1 };
    }
    const before = this.epochs.get(previous);
    if (before === undefined) {
      const newest = this.newest;
      if (newest !== null && epoch > newest.number) {
        // The caller fetches missing links first; still missing means a gap.
        throw new CryptoError("chain_gap", `Epoch ${epoch} follows one I never saw.`);
      }
      return { members: null, roster: null }; // an old record, before this client's first: for reading
    }
    for (const [n, view] of this.epochs) {
      if (n !== epoch && ((previous < n && n < epoch) || view.previous === previous)) {
        throw new CryptoError("chain_gap", `Epoch ${epoch} forks the chain I verified.`);
      }
    }
    const members = nextMembers(before.members, {
      owner: this.owner || this.createdBy,
      rosterEpoch: before.roster,
      statements,
    });
    const departed = [...before.members].filter((name) => !members.has(name));
    if (!before.members.has(signer) || departed.includes(signer)) {
      throw new CryptoError("signer_not_member", `${signer} may not make this key.`);
    }
    return { members, roster: rosterAfter(epoch, before.roster, { changesMembers: statements.length > 0 }) };
  }

  /**
   * Verify a distribution record (protocol.md §4.2 epoch object) and keep my key from it.
   * The record joins the chain even when my own wrapped key does not open (it is a valid
   * link; `key_does_not_open` then leads to epoch.report, §5.4).
   * @param {object} record the epoch object as received
   * @param {{me: string, myEncryptionKey: CryptoKey, signerSpki: Uint8Array,
   *   signerIsServer: boolean, statements?: Statement[]}} context `signerSpki` from the
   *   signer's verified, pinned certificate; `statements` the record's membership
   *   statements, their signatures already checked
   * @returns {Promise<void>}
   * @throws {CryptoError} `origin_changed`, `bad_distribution`, `members_mismatch`,
   *   `signer_not_member`, `chain_gap`, `stale_statement`, `bad_statement`, `not_owner`,
   *   `key_does_not_open`
   */
  async acceptEpoch(record, { me, myEncryptionKey, signerSpki, signerIsServer, statements = [] }) {
    this.#checkOrigin(record.key_origin);
    if (record.conversation !== this.id) {
      // Python keys states by record["conversation"]; here the state is the caller's pick,
      // so a record of another conversation is refused rather than filed under this one.
      throw new CryptoError("bad_distribution", "The record is for another conversation.");
    }
    let members;
    try {
      members = record.members.map((m) => ({
        username: m.username,
        serial: m.serial,
        wrappedKey: m.serial ? b64decode(m.wrapped_key) : new Uint8Array(),
      }));
      const data = await distributionRecord({
        conversationId: record.conversation,
        epoch: record.epoch,
        previousEpoch: record.previous_epoch,
        rosterEpoch: record.roster_epoch,
        keyOrigin: record.key_origin,
        signer: record.signer,
        signerSerial: record.signer_serial,
        members,
        changes: statements.map((s) => s.signedBytes(this.id)),
      });
      await verify(signerSpki, b64decode(record.signature), data);
    } catch {
      throw new CryptoError("bad_distribution", "The key record's signature fails.");
    }
    const names = new Set(members.map((m) => m.username));
    if (record.key_origin === "server") {
      if (record.signer !== "server" || !signerIsServer) {
        throw new CryptoError("bad_distribution", "A server-mode key must come from the server.");
      }
    } else {
      this.#checkMembersRecord(record, names, statements);
    }
    const view = Object.freeze({
      number: record.epoch,
      previous: record.previous_epoch,
      roster: record.roster_epoch,
      signer: record.signer,
      members: names,
    });
    const known = this.epochs.get(view.number);
    if (known !== undefined && !sameView(known, view)) {
      throw new CryptoError("bad_distribution", `Two different records for epoch ${view.number}.`);
    }
    // Commit, with no await since the checks above.
    this.fixKeyOrigin(record.key_origin);
    this.epochs.set(view.number, view);
    this.records.set(view.number, { record, statements: statements.map((s) => s.toJSON()) });
    if (record.epoch === 1 && record.key_origin === "members") this.owner = record.signer;
    const mine = members.find((m) => m.username === me && m.serial);
    if (mine) {
      let key;
      try {
        const raw = await oaepDecrypt(myEncryptionKey, mine.wrappedKey);
        // Imported non-extractable at once: the raw bytes are not kept. A key that is not
        // 32 bytes cannot be used either, so it does not "open" (Python notices it only
        // when the first message fails).
        key = await importEpochKey(raw);
        raw.fill(0);
      } catch {
        throw new CryptoError("key_does_not_open", "My wrapped key does not open.");
      }
      this.epochKeys.set(view.number, key);
    }
  }

  #checkMembersRecord(record, names, statements) {
    if (record.signer === "server") {
      throw new CryptoError("bad_distribution", "The server cannot make a members-mode key.");
    }
    const { members: expected, roster } = this.expectedTransition({
      epoch: record.epoch,
      previous: record.previous_epoch,
      signer: record.signer,
      statements,
    });
    if (expected !== null) {
      const extra = [...names].filter((name) => !expected.has(name)).sort();
      const missing = [...expected].filter((name) => !names.has(name)).sort();
      if (extra.length || missing.length) {
        throw new CryptoError(
          "members_mismatch",
          `Epoch ${record.epoch} adds ${extra.join(", ") || "nobody"} and drops ${missing.join(", ") || "nobody"} without a member's signature.`,
        );
      }
    }
    if (roster !== null && record.roster_epoch !== roster) {
      throw new CryptoError("bad_distribution", "The record's roster does not follow.");
    }
    if (!names.has(record.signer)) throw new CryptoError("signer_not_member", `${record.signer} is not a member.`);
  }

  /** @returns {number} the newest epoch I hold a key for (0: none) */
  get currentEpoch() {
    return this.epochKeys.size ? Math.max(...this.epochKeys.keys()) : 0;
  }

  // --- messages ---------------------------------------------------------------------

  /**
   * A `message.send` body for `text` under the newest epoch key. The sequence is taken
   * before any await, so two sends never share one; send them in sequence order.
   * @param {string} text
   * @param {{sender: string, device: string, signingKey: {algorithm: string, privateKey: any},
   *   signingSerial: string, clientId?: string}} from
   * @returns {Promise<object>} the frame's fields (without `type` and `id`)
   * @throws {CryptoError} `no_epoch_key`
   */
  async encrypt(text, { sender, device, signingKey, signingSerial, clientId = "" }) {
    const epoch = this.currentEpoch;
    if (!epoch) throw new CryptoError("no_epoch_key", "No key for this conversation yet.");
    this.lastSequence += 1;
    const sequence = this.lastSequence;
    const timestampMs = Date.now();
    const header = messageHeader({
      conversationId: this.id,
      epoch,
      sender,
      senderSerial: signingSerial,
      device,
      sequence,
      timestampMs,
    });
    const { iv, ciphertext } = await aesGcmEncrypt(this.epochKeys.get(epoch), encodeBody(text), header);
    const signed = messageSignedBytes({ header, iv, ciphertext });
    return {
      conversation: this.id,
      client_id: clientId || globalThis.crypto.randomUUID(),
      epoch,
      sequence,
      timestamp_ms: timestampMs,
      sender_serial: signingSerial,
      device,
      iv: b64encode(iv),
      ciphertext: b64encode(ciphertext),
      signature: b64encode(await sign(signingKey, signed)),
    };
  }

  /**
   * Whether the message of this order was already opened (events arrive at least once).
   * @param {number} order
   * @returns {boolean}
   */
  isDuplicate(order) {
    return this.seenOrders.has(order);
  }

  /**
   * Verify the sender's signature, refuse replays and non-members, decrypt.
   * @param {object} message the message object as received (protocol.md §4.2)
   * @param {{senderSpki: Uint8Array}} from the key of the sender's verified, pinned
   *   signing certificate (valid at `sent_at`)
   * @returns {Promise<DecryptedMessage>}
   * @throws {CryptoError} `replayed`, `not_member`, `bad_signature`, `no_epoch_key`,
   *   `decrypt_failed`, `bad_body`
   */
  async decrypt(message, { senderSpki }) {
    const { sender, sequence, device } = message;
    const counter = counterKey(sender, device);
    this.#checkFresh(counter, sender, sequence);
    const view = this.epochs.get(message.epoch);
    if (view !== undefined && !view.members.has(sender)) {
      throw new CryptoError("not_member", `${sender} was not a member in epoch ${view.number}.`);
    }
    let header;
    let iv;
    let ciphertext;
    try {
      header = messageHeader({
        conversationId: this.id,
        epoch: message.epoch,
        sender,
        senderSerial: message.sender_serial,
        device,
        sequence,
        timestampMs: message.timestamp_ms,
      });
      iv = b64decode(message.iv);
      ciphertext = b64decode(message.ciphertext);
      const signed = messageSignedBytes({ header, iv, ciphertext });
      await verify(senderSpki, b64decode(message.signature), signed);
    } catch {
      // Fields the encoding refuses cannot carry a valid signature either (Python lets
      // the encoding's ValueError escape here; one code is what a UI can show).
      throw new CryptoError("bad_signature", "The message signature does not verify.");
    }
    const key = this.epochKeys.get(message.epoch);
    if (key === undefined) throw new CryptoError("no_epoch_key", `No key for epoch ${message.epoch}.`);
    let plaintext;
    try {
      plaintext = await aesGcmDecrypt(key, iv, ciphertext, header);
    } catch (error) {
      throw new CryptoError("decrypt_failed", error.message);
    }
    const text = decodeBody(plaintext);
    this.#checkFresh(counter, sender, sequence); // again: another call may have taken it meanwhile
    this.senderSequences.set(counter, sequence);
    this.seenOrders.add(message.order);
    this.lastOrder = Math.max(this.lastOrder, message.order);
    return {
      conversation: this.id,
      order: message.order,
      epoch: message.epoch,
      sender,
      text,
      timestampMs: message.timestamp_ms,
      sequence,
    };
  }

  #checkFresh(counter, sender, sequence) {
    if (!(sequence > (this.senderSequences.get(counter) ?? 0))) {
      throw new CryptoError("replayed", `${sender}'s device already used sequence ${sequence}.`);
    }
  }

  // --- persistence ------------------------------------------------------------------
  //
  // What is stored is the *evidence*, not the conclusions: the records as received (with
  // their statements) and the counters. No epoch key and no verified view is persisted.
  // Why: epoch keys at rest would be plaintext keys in IndexedDB, readable by anything
  // that reads the profile, while the wrapped keys inside the records are useless without
  // the (non-extractable) encryption key; and a stored "verified" view could be edited
  // at rest into a chain nobody signed, whereas stored records must pass every check
  // (certificates, pins, signatures, the membership rule) again in replay(). The counters
  // (sender sequences, seen orders) are kept so replay and duplicate detection survive a
  // reload; tampering with them can only make this client refuse more, never accept more.

  /**
   * The persistable state: origin, creator, counters and the verified records in the
   * order they were accepted. No key material.
   * @returns {object} JSON-safe
   */
  toJSON() {
    const records = [...this.records.values()].map(({ record, statements }) => ({ record, statements }));
    return {
      version: STATE_VERSION,
      id: this.id,
      keyOrigin: this.keyOrigin,
      createdBy: this.createdBy,
      lastSequence: this.lastSequence,
      lastOrder: this.lastOrder,
      seenOrders: [...this.seenOrders],
      senderSequences: [...this.senderSequences].map(([key, sequence]) => [...JSON.parse(key), sequence]),
      records: [...this.pendingRecords, ...records],
    };
  }

  /**
   * A state restored from toJSON(): counters and origin are back, the chain and keys are
   * not. Its records wait in `pendingRecords` until replay() has them verified again.
   * @param {object} data
   * @returns {ConversationState}
   */
  static fromJSON(data) {
    if (data?.version !== STATE_VERSION || typeof data.id !== "string") {
      throw new CryptoError("bad_state", "Not a stored conversation state.");
    }
    const state = new ConversationState(data.id, { keyOrigin: data.keyOrigin ?? null, createdBy: data.createdBy ?? "" });
    state.lastSequence = data.lastSequence ?? 0;
    state.lastOrder = data.lastOrder ?? 0;
    state.seenOrders = new Set(data.seenOrders ?? []);
    for (const [sender, device, sequence] of data.senderSequences ?? []) {
      state.senderSequences.set(counterKey(sender, device), sequence);
    }
    state.pendingRecords = [...(data.records ?? [])];
    return state;
  }

  /**
   * Verify the restored records again, oldest first, with the caller's full check (the
   * same path a live `epoch.new` takes: certificates at the record's time, pins,
   * statement signatures, then acceptEpoch). A record that no longer passes is dropped
   * and its error returned; anything but a CryptoError is a bug and is thrown.
   * @param {(record: object, statements: object[]) => Promise<void>} verifyAndAccept
   * @returns {Promise<CryptoError[]>} the refusals
   */
  async replay(verifyAndAccept) {
    const pending = this.pendingRecords;
    this.pendingRecords = [];
    const problems = [];
    for (const { record, statements } of pending) {
      try {
        await verifyAndAccept(record, statements);
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
        problems.push(error);
      }
    }
    return problems;
  }
}
