// Members key origin: who may be in the next epoch; the port of cryptokit/membership.py
// (protocol.md §5.2). The rule is applied by the member who makes a key (before
// wrapping) and by every member who receives it (before accepting), so a server cannot
// add or drop anyone on its own:
//
//     next members = members of the previous record
//                    + subjects of "add" statements signed by a member of that record
//                    - subjects of "leave" statements signed by themselves
//                    - subjects of "remove" statements signed by the owner
//
// Each statement names the roster it was made against and is valid only against it, so
// it applies once. Certificates and pins are the caller's; this module checks the set
// arithmetic and (Statement.verify) one statement's signature.
// MembershipError of Python is a CryptoError here, with the same codes.

import { asBytes, b64decode, b64encode, randomBytes, sha256 } from "./bytes.js";
import { membershipStatement } from "./encoding.js";
import { CryptoError } from "./errors.js";
import { sign, verify } from "./signing.js";

const EMPTY = new Uint8Array();
const NONCE_BYTES = 16;

function malformed() {
  return new CryptoError("bad_statement", "A membership statement is malformed.");
}

/** A signed membership change, as carried in JSON (protocol.md §4.2 "statement"). */
export class Statement {
  /**
   * @param {{action: string, subject: string, actor: string, actorSerial: string,
   *   rosterEpoch: number, nonce: Uint8Array, signature: Uint8Array,
   *   subjectSigningSha256?: Uint8Array, subjectEncryptionSha256?: Uint8Array}} fields
   */
  constructor({
    action,
    subject,
    actor,
    actorSerial,
    rosterEpoch,
    nonce,
    signature,
    subjectSigningSha256 = EMPTY,
    subjectEncryptionSha256 = EMPTY,
  }) {
    this.action = action;
    this.subject = subject;
    this.actor = actor;
    this.actorSerial = actorSerial;
    this.rosterEpoch = rosterEpoch;
    this.nonce = nonce;
    this.signature = signature;
    this.subjectSigningSha256 = subjectSigningSha256;
    this.subjectEncryptionSha256 = subjectEncryptionSha256;
    Object.freeze(this); // like Python's frozen dataclass: a verified statement stays as verified
  }

  /**
   * A new statement with a fresh nonce, signed by the actor's signing key.
   * @param {{conversationId: string, signingKey: {algorithm: string, privateKey: any},
   *   action: "add"|"leave"|"remove", subject: string, actor: string, actorSerial: string,
   *   rosterEpoch: number, keyHashes?: [Uint8Array, Uint8Array]}} fields
   * @returns {Promise<Statement>}
   * @throws {CryptoError} `bad_encoding` for fields the encoding refuses
   */
  static async create({ conversationId, signingKey, action, subject, actor, actorSerial, rosterEpoch, keyHashes: hashes = [EMPTY, EMPTY] }) {
    const fields = {
      action,
      subject,
      actor,
      actorSerial,
      rosterEpoch,
      nonce: newNonce(),
      subjectSigningSha256: asBytes(hashes[0]),
      subjectEncryptionSha256: asBytes(hashes[1]),
    };
    const unsigned = new Statement({ ...fields, signature: EMPTY });
    const signature = await sign(signingKey, unsigned.signedBytes(conversationId));
    return new Statement({ ...fields, signature });
  }

  /**
   * The encoding the actor signs (key origin "members": statements exist only there).
   * @param {string} conversationId
   * @returns {Uint8Array}
   * @throws {CryptoError} `bad_encoding`
   */
  signedBytes(conversationId) {
    return membershipStatement({
      conversationId,
      keyOrigin: "members",
      rosterEpoch: this.rosterEpoch,
      action: this.action,
      subject: this.subject,
      subjectSigningSha256: this.subjectSigningSha256,
      subjectEncryptionSha256: this.subjectEncryptionSha256,
      actor: this.actor,
      actorSerial: this.actorSerial,
      nonce: this.nonce,
    });
  }

  /**
   * Resolve if the actor's key (`actorSpki`, from a certificate the caller verified and
   * pinned) signed this statement for this conversation.
   * @param {string} conversationId
   * @param {Uint8Array} actorSpki
   * @returns {Promise<void>}
   * @throws {CryptoError} `bad_statement`
   */
  async verify(conversationId, actorSpki) {
    let data;
    try {
      data = this.signedBytes(conversationId);
    } catch {
      throw malformed();
    }
    try {
      await verify(actorSpki, this.signature, data);
    } catch {
      throw new CryptoError("bad_statement", "A statement's signature fails.");
    }
  }

  /** The wire form (protocol.md §4.2): snake_case, binary as base64, hashes "" unless add. */
  toJSON() {
    return {
      action: this.action,
      subject: this.subject,
      subject_signing_sha256: b64encode(this.subjectSigningSha256),
      subject_encryption_sha256: b64encode(this.subjectEncryptionSha256),
      actor: this.actor,
      actor_serial: this.actorSerial,
      roster_epoch: this.rosterEpoch,
      nonce: b64encode(this.nonce),
      signature: b64encode(this.signature),
    };
  }

  /**
   * Parse the wire form; a statement that cannot be read is `bad_statement`.
   * @param {object} data
   * @returns {Statement}
   * @throws {CryptoError} `bad_statement`
   */
  static fromJSON(data) {
    if (data === null || typeof data !== "object") throw malformed();
    const strings = ["action", "subject", "actor", "actor_serial"];
    if (strings.some((name) => typeof data[name] !== "string")) throw malformed();
    if (!Number.isSafeInteger(data.roster_epoch)) throw malformed();
    try {
      return new Statement({
        action: data.action,
        subject: data.subject,
        actor: data.actor,
        actorSerial: data.actor_serial,
        rosterEpoch: data.roster_epoch,
        nonce: b64decode(data.nonce),
        signature: b64decode(data.signature),
        subjectSigningSha256: b64decode(data.subject_signing_sha256),
        subjectEncryptionSha256: b64decode(data.subject_encryption_sha256),
      });
    } catch {
      throw malformed();
    }
  }
}

/**
 * A fresh statement nonce (16 random bytes).
 * @returns {Uint8Array}
 */
export function newNonce() {
  return randomBytes(NONCE_BYTES);
}

/**
 * SHA-256 of both SPKIs: how an addition names the invitee's keys.
 * @param {Uint8Array} signingSpki
 * @param {Uint8Array} encryptionSpki
 * @returns {Promise<[Uint8Array, Uint8Array]>}
 */
export async function keyHashes(signingSpki, encryptionSpki) {
  return [await sha256(signingSpki), await sha256(encryptionSpki)];
}

/**
 * The roster a record belongs to: its own epoch when it changes the member list (and for
 * the first record), else the roster of the record it follows.
 * @param {number} epoch
 * @param {number} previousRoster 0 when there is no previous record
 * @param {{changesMembers: boolean}} options
 * @returns {number}
 */
export function rosterAfter(epoch, previousRoster, { changesMembers }) {
  return changesMembers || previousRoster === 0 ? epoch : previousRoster;
}

/**
 * The member list a record applying `statements` to `members` must name.
 * @param {Iterable<string>} members the previous record's members
 * @param {{owner: string, rosterEpoch: number, statements: Statement[]}} options
 * @returns {Set<string>}
 * @throws {CryptoError} `stale_statement`, `signer_not_member`, `bad_statement`, `not_owner`
 */
export function nextMembers(members, { owner, rosterEpoch, statements }) {
  const before = new Set(members);
  const added = new Set();
  const departed = new Set();
  for (const statement of statements) {
    if (statement.rosterEpoch !== rosterEpoch) {
      throw new CryptoError(
        "stale_statement",
        `${statement.actor}'s ${statement.action} of ${statement.subject} was made for roster ${statement.rosterEpoch}, not ${rosterEpoch}.`,
      );
    }
    if (!before.has(statement.actor)) {
      throw new CryptoError("signer_not_member", `${statement.actor} is not a member who may change it.`);
    }
    if (added.has(statement.subject) || departed.has(statement.subject)) {
      throw new CryptoError("bad_statement", `${statement.subject} is changed twice.`);
    }
    if (statement.action === "add") {
      if (before.has(statement.subject)) throw new CryptoError("bad_statement", `${statement.subject} is already in.`);
      added.add(statement.subject);
    } else if (statement.action === "leave") {
      if (statement.actor !== statement.subject || !before.has(statement.subject)) {
        throw new CryptoError("bad_statement", "Only a member signs their own leave.");
      }
      departed.add(statement.subject);
    } else if (statement.action === "remove") {
      if (statement.actor !== owner || !before.has(statement.subject)) {
        throw new CryptoError("not_owner", "Only the owner removes members.");
      }
      if (statement.subject === owner) throw new CryptoError("bad_statement", "The owner leaves, not removes.");
      departed.add(statement.subject);
    } else {
      throw new CryptoError("bad_statement", `Unknown action ${JSON.stringify(statement.action)}.`);
    }
  }
  const next = new Set([...before, ...added]);
  for (const name of departed) next.delete(name);
  return next;
}
