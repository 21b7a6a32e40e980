// Byte-exact encodings that get signed or authenticated: the port of
// cryptokit/encoding.py, fixed by cryptokit/vectors/encoding.json (protocol.md §3.4).
//
// Every field is u32be(length) || bytes; integers are 8-byte big-endian unsigned fields;
// strings are UTF-8; binary fields are raw. Each encoding opens with its own domain tag,
// so a signature made for one purpose never verifies for another. Serials must be
// lowercase hex, conversation ids lowercase UUIDs and devices 32 lowercase hex
// characters: anything else is refused, so both sides can never sign two spellings of
// one value. Refusals throw CryptoError("bad_encoding") where Python raises ValueError or
// TypeError.

import { asBytes, compareBytes, concatBytes, sha256, utf8 } from "./bytes.js";
import { CryptoError } from "./errors.js";

export const PROTOCOL_VERSION = 2; // message header and signed message
export const RECORD_VERSION = 2; // distribution records
export const STATEMENT_VERSION = 1; // membership statements
export const KEY_ORIGINS = Object.freeze(["server", "members"]);
export const MEMBERSHIP_ACTIONS = Object.freeze(["add", "leave", "remove"]);

const MAX_U64 = (1n << 64n) - 1n;
const MAX_FIELD = 0xffffffff;
const SERIAL = /^[0-9a-f]+$/;
const DEVICE = /^[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const TAG_HEADER = utf8("securechat.message-header.v2");
const TAG_MESSAGE = utf8("securechat.message.v1");
const TAG_RECORD = utf8("securechat.epoch.v2");
const TAG_STATEMENT = utf8("securechat.membership.v1");
const TAG_POP = utf8("securechat.pop.v1");

function refuse(message) {
  return new CryptoError("bad_encoding", message);
}

/** Lone surrogates would be silently replaced by U+FFFD; Python refuses them, so do we. */
function wellFormed(text) {
  if (typeof text.isWellFormed === "function") return text.isWellFormed();
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/**
 * The 8-byte big-endian field of an integer. Numbers must be exact (safe) integers; a
 * BigInt may use the full [0, 2**64) range the encoding allows.
 */
function integerBytes(value) {
  let big;
  if (typeof value === "bigint") {
    big = value;
  } else if (typeof value === "number" && Number.isSafeInteger(value)) {
    big = BigInt(value);
  } else {
    // Booleans, floats and numbers past 2**53 (already rounded by JSON.parse) are refused:
    // encoding a rounded value would sign a number nobody meant.
    throw refuse("integers must be exact integers");
  }
  if (big < 0n || big > MAX_U64) throw refuse("integers must be in [0, 2**64)");
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, big);
  return out;
}

function fieldBytes(value) {
  if (typeof value === "string") {
    if (!wellFormed(value)) throw refuse("a string has a lone surrogate (not encodable as UTF-8)");
    return utf8(value);
  }
  if (typeof value === "number" || typeof value === "bigint") return integerBytes(value);
  if (value instanceof Uint8Array || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return asBytes(value);
  }
  throw refuse(`cannot encode a ${value === null ? "null" : typeof value}`);
}

/**
 * Concatenate length-prefixed fields, the building block of every encoding.
 * @param {...(Uint8Array|string|number|bigint)} fields
 * @returns {Uint8Array}
 */
export function encode(...fields) {
  const parts = [];
  for (const value of fields) {
    const data = fieldBytes(value);
    if (data.length > MAX_FIELD) throw refuse("a field is limited to 2**32 - 1 bytes");
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, data.length);
    parts.push(prefix, data);
  }
  return concatBytes(...parts);
}

function serial(value) {
  if (typeof value !== "string" || !SERIAL.test(value)) throw refuse("a serial is lowercase hex");
  return value;
}

function conversation(value) {
  // One spelling only: a signature over "ABC..." must not verify for "abc...".
  if (typeof value !== "string" || !UUID.test(value)) {
    throw refuse("a conversation id is a lowercase UUID string");
  }
  return value;
}

function device(value) {
  if (typeof value !== "string" || !DEVICE.test(value)) {
    throw refuse("a device id is 32 lowercase hex characters");
  }
  return value;
}

function text(value, what) {
  if (typeof value !== "string") throw refuse(`${what} must be a string`);
  return value;
}

function binary(value, what) {
  try {
    return asBytes(value);
  } catch {
    throw refuse(`${what} must be bytes`);
  }
}

function integer(value, what) {
  if (typeof value === "bigint") return value;
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw refuse(`${what} must be an exact integer`);
  }
  return BigInt(value);
}

/**
 * The AES-GCM associated data of a message (protocol.md §3.4). `sequence` counts per
 * sending device, so several tabs of one user never collide.
 * @param {{conversationId: string, epoch: number, sender: string, senderSerial: string,
 *   device: string, sequence: number, timestampMs: number}} fields
 * @returns {Uint8Array}
 * @throws {CryptoError} `bad_encoding`
 */
export function messageHeader({ conversationId, epoch, sender, senderSerial, device: dev, sequence, timestampMs }) {
  return encode(
    TAG_HEADER,
    PROTOCOL_VERSION,
    conversation(conversationId),
    epoch,
    text(sender, "sender"),
    serial(senderSerial),
    device(dev),
    sequence,
    timestampMs,
  );
}

/**
 * What the sender of a message signs.
 * @param {{header: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array}} fields ciphertext with its tag
 * @returns {Uint8Array}
 */
export function messageSignedBytes({ header, iv, ciphertext }) {
  return encode(TAG_MESSAGE, binary(header, "header"), binary(iv, "iv"), binary(ciphertext, "ciphertext"));
}

/**
 * What the maker of an epoch key signs (protocol.md §3.4): the chain link, every member
 * with the serial and SHA-256 of the wrapped key it was given (serial "" and an empty
 * wrapped key for a member without a usable key), and the SHA-256 of each membership
 * statement applied. Async because SHA-256 is (WebCrypto has no synchronous digest).
 * @param {{conversationId: string, epoch: number, previousEpoch: number, rosterEpoch: number,
 *   keyOrigin: "server"|"members", signer: string, signerSerial: string,
 *   members: Array<{username: string, serial: string, wrappedKey: Uint8Array}>,
 *   changes?: Uint8Array[]}} fields `changes`: membership statement encodings
 * @returns {Promise<Uint8Array>}
 * @throws {CryptoError} `bad_encoding`
 */
export async function distributionRecord({
  conversationId,
  epoch,
  previousEpoch,
  rosterEpoch,
  keyOrigin,
  signer,
  signerSerial,
  members,
  changes = [],
}) {
  if (!KEY_ORIGINS.includes(keyOrigin)) throw refuse("key_origin is 'server' or 'members'");
  if (!Array.isArray(members) || !Array.isArray(changes)) throw refuse("members and changes are lists");
  const names = members.map((m) => text(m?.username, "a member's username"));
  if (new Set(names).size !== names.length) throw refuse("duplicate member in a distribution record");
  const [e, p, r] = [integer(epoch, "epoch"), integer(previousEpoch, "previous_epoch"), integer(rosterEpoch, "roster_epoch")];
  if (!(p >= 0n && p < e) || !(r >= 1n && r <= e)) {
    throw refuse("previous_epoch < epoch and 1 <= roster_epoch <= epoch");
  }
  const fields = [
    TAG_RECORD,
    RECORD_VERSION,
    conversation(conversationId),
    epoch,
    previousEpoch,
    rosterEpoch,
    keyOrigin,
    text(signer, "signer"),
    serial(signerSerial),
    members.length,
  ];
  // Sorted by the UTF-8 bytes of the username, not by JavaScript's default string order
  // (UTF-16 code units), which differs for characters beyond U+FFFF.
  const sorted = members
    .map((m) => ({ ...m, key: utf8(m.username) }))
    .sort((a, b) => compareBytes(a.key, b.key));
  for (const member of sorted) {
    const wrapped = binary(member.wrappedKey ?? new Uint8Array(), "a wrapped key");
    if (typeof member.serial !== "string") throw refuse("a member's serial must be a string");
    if ((member.serial === "") !== (wrapped.length === 0)) {
      throw refuse("a member has a serial and a wrapped key, or neither");
    }
    const digest = member.serial ? await sha256(wrapped) : new Uint8Array();
    fields.push(member.username, member.serial ? serial(member.serial) : "", digest);
  }
  const digests = [];
  for (const change of changes) digests.push(await sha256(binary(change, "a statement")));
  digests.sort(compareBytes);
  for (let i = 1; i < digests.length; i += 1) {
    if (compareBytes(digests[i - 1], digests[i]) === 0) {
      throw refuse("duplicate membership statement in a distribution record");
    }
  }
  fields.push(digests.length, ...digests);
  return encode(...fields);
}

/**
 * What a member signs to add ("add": the invitee's two SPKI hashes), leave ("leave":
 * actor === subject) or remove ("remove": the owner) someone; bound to the roster it
 * was made against, so it applies once.
 * @param {{conversationId: string, keyOrigin: string, rosterEpoch: number, action: string,
 *   subject: string, subjectSigningSha256: Uint8Array, subjectEncryptionSha256: Uint8Array,
 *   actor: string, actorSerial: string, nonce: Uint8Array}} fields
 * @returns {Uint8Array}
 * @throws {CryptoError} `bad_encoding`
 */
export function membershipStatement({
  conversationId,
  keyOrigin,
  rosterEpoch,
  action,
  subject,
  subjectSigningSha256,
  subjectEncryptionSha256,
  actor,
  actorSerial,
  nonce,
}) {
  if (!MEMBERSHIP_ACTIONS.includes(action)) throw refuse("action is 'add', 'leave' or 'remove'");
  const hashes = [
    binary(subjectSigningSha256 ?? new Uint8Array(), "subject_signing_sha256"),
    binary(subjectEncryptionSha256 ?? new Uint8Array(), "subject_encryption_sha256"),
  ];
  if (action === "add" && hashes.some((h) => h.length !== 32)) {
    throw refuse("an addition names the invitee's two 32-byte key hashes");
  }
  if (action !== "add" && hashes.some((h) => h.length !== 0)) throw refuse("only an addition names key hashes");
  if (action === "leave" && actor !== subject) throw refuse("only the member who leaves signs a leave");
  const n = binary(nonce, "nonce");
  if (n.length < 16 || n.length > 64) throw refuse("the nonce is 16 to 64 bytes");
  if (integer(rosterEpoch, "roster_epoch") < 1n) throw refuse("roster_epoch starts at 1");
  return encode(
    TAG_STATEMENT,
    STATEMENT_VERSION,
    conversation(conversationId),
    text(keyOrigin, "key_origin"),
    rosterEpoch,
    action,
    text(subject, "subject"),
    ...hashes,
    text(actor, "actor"),
    serial(actorSerial),
    n,
  );
}

/**
 * What a client signs to prove possession of its signing key at registration; `nonce`
 * is the decoded 32 bytes, the SPKIs the DER sent with the challenge request.
 * @param {{username: string, nonce: Uint8Array, signingSpki: Uint8Array, encryptionSpki: Uint8Array}} fields
 * @returns {Uint8Array}
 */
export function popChallenge({ username, nonce, signingSpki, encryptionSpki }) {
  return encode(
    TAG_POP,
    text(username, "username"),
    binary(nonce, "nonce"),
    binary(signingSpki, "signing_spki"),
    binary(encryptionSpki, "encryption_spki"),
  );
}
