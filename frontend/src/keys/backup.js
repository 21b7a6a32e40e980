// The encrypted key backup kept on the server (GET/PUT /api/keys/backup/), so a new
// browser can restore the user's keys.
//
// The blob is the UTF-8 JSON
//   {"v": 1, "kdf": "pbkdf2-sha256", "iterations": 600000, "salt": b64(16 bytes),
//    "protector": "login-password" | "passphrase", "iv": b64(12 bytes), "ciphertext": b64}
// where ciphertext is AES-256-GCM (tag appended) under PBKDF2-SHA256(passphrase, salt,
// iterations), with associated data "securechat.key-backup.v1" ‖ username, so a blob made
// for one user never opens as another's. The plaintext is JSON holding both exported
// private keys, their SPKIs and serials. docs/browser-keys.md explains the choices.

import { b64decode, b64encode, equalBytes, fromUtf8, randomBytes, utf8 } from "../crypto/bytes.js";
import { CryptoError } from "../crypto/errors.js";
import { exportSigningKey, importSigningKey } from "../crypto/signing.js";
import { exportEncryptionKey, importEncryptionKey } from "../crypto/wrapping.js";

/** OWASP Password Storage Cheat Sheet (2023): 600,000 iterations of PBKDF2-HMAC-SHA256. */
export const BACKUP_ITERATIONS = 600_000;
/** What a blob may ask for: fewer is weaker than we ever write; more would let a hostile
 * server freeze the tab for minutes on a restore. */
const MIN_ITERATIONS = 600_000;
const MAX_ITERATIONS = 10_000_000;
/** The server's KEY_BACKUP_MAX_BYTES. */
export const BACKUP_MAX_BYTES = 64 * 1024;
export const PROTECTORS = Object.freeze(["login-password", "passphrase"]);
const AAD_TAG = "securechat.key-backup.v1";
const FORMAT_VERSION = 1;
const KDF = "pbkdf2-sha256";
const SALT_BYTES = 16;
const IV_BYTES = 12;

/** A backup that cannot be made, read or opened; `code` is stable. */
export class BackupError extends CryptoError {
  /**
   * @param {string} code `backup_passphrase_wrong`, `backup_invalid`, `backup_size`,
   *   `backup_protector`
   * @param {string} message
   */
  constructor(code, message) {
    super(code, message);
    this.name = "BackupError";
  }
}

function aad(username) {
  if (typeof username !== "string" || username === "") {
    throw new TypeError("A backup is bound to a username; none was given.");
  }
  return utf8(AAD_TAG + username);
}

// Passphrases are compared as bytes; NFC makes "é" typed on two keyboards the same bytes.
function passphraseBytes(passphrase) {
  if (typeof passphrase !== "string" || passphrase === "") {
    throw new BackupError("backup_passphrase_wrong", "Enter the backup password.");
  }
  return utf8(passphrase.normalize("NFC"));
}

async function deriveKey(passphrase, salt, iterations, usage) {
  const material = await crypto.subtle.importKey(
    "raw",
    passphraseBytes(passphrase),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    [usage],
  );
}

function toBytes(blob) {
  if (blob instanceof Uint8Array) return blob;
  if (blob instanceof ArrayBuffer) return new Uint8Array(blob);
  throw new BackupError("backup_invalid", "A key backup must be bytes.");
}

/**
 * Read the unencrypted header of a backup blob (to know which password to ask for).
 * @param {Uint8Array | ArrayBuffer} blob
 * @returns {{v: number, kdf: string, iterations: number, salt: Uint8Array,
 *   protector: string, iv: Uint8Array, ciphertext: Uint8Array}}
 * @throws {BackupError} `backup_invalid` when it is not a version-1 backup
 */
export function parseBackup(blob) {
  const bytes = toBytes(blob);
  let parsed;
  try {
    parsed = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new BackupError("backup_invalid", "The key backup is not readable.");
  }
  const invalid = (why) => new BackupError("backup_invalid", `The key backup is invalid: ${why}.`);
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw invalid("not an object");
  if (parsed.v !== FORMAT_VERSION) throw invalid("unknown version");
  if (parsed.kdf !== KDF) throw invalid("unknown key derivation");
  const { iterations } = parsed;
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw invalid("iteration count out of range");
  }
  if (!PROTECTORS.includes(parsed.protector)) throw invalid("unknown protector");
  const field = (name, length) => {
    let value;
    try {
      value = b64decode(parsed[name]);
    } catch {
      throw invalid(`${name} is not base64`);
    }
    if (length !== undefined && value.length !== length) throw invalid(`${name} has the wrong size`);
    return value;
  };
  const ciphertext = field("ciphertext");
  if (ciphertext.length < 16) throw invalid("ciphertext too short");
  return {
    v: parsed.v,
    kdf: parsed.kdf,
    iterations,
    salt: field("salt", SALT_BYTES),
    protector: parsed.protector,
    iv: field("iv", IV_BYTES),
    ciphertext,
  };
}

/**
 * Encrypt `keys` (extractable private keys) into a backup blob.
 * @param {{signing: {algorithm: string, privateKey: any, spki: Uint8Array, serial?: string},
 *   encryption: {privateKey: CryptoKey, spki: Uint8Array, serial?: string}}} keys
 * @param {string} passphrase the login password or a separate backup passphrase
 * @param {{protector: "login-password" | "passphrase", username: string,
 *   iterations?: number}} options
 * @returns {Promise<Uint8Array>} the blob (UTF-8 JSON), at most BACKUP_MAX_BYTES
 */
export async function encryptBackup(keys, passphrase, { protector, username, iterations = BACKUP_ITERATIONS }) {
  if (!PROTECTORS.includes(protector)) {
    throw new BackupError("backup_protector", "Choose the login password or a backup passphrase.");
  }
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new RangeError("Backup iterations out of range.");
  }
  const plaintext = {
    v: FORMAT_VERSION,
    username,
    created: new Date().toISOString(),
    signing: {
      algorithm: keys.signing.algorithm,
      private: await exportSigningKey(keys.signing),
      spki: b64encode(keys.signing.spki),
      serial: keys.signing.serial ?? "",
    },
    encryption: {
      private: await exportEncryptionKey(keys.encryption.privateKey),
      spki: b64encode(keys.encryption.spki),
      serial: keys.encryption.serial ?? "",
    },
  };
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const key = await deriveKey(passphrase, salt, iterations, "encrypt");
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: aad(username) },
      key,
      utf8(JSON.stringify(plaintext)),
    ),
  );
  const blob = utf8(
    JSON.stringify({
      v: FORMAT_VERSION,
      kdf: KDF,
      iterations,
      salt: b64encode(salt),
      protector,
      iv: b64encode(iv),
      ciphertext: b64encode(ciphertext),
    }),
  );
  if (blob.length > BACKUP_MAX_BYTES) {
    throw new BackupError("backup_size", "These keys are too large to back up.");
  }
  return blob;
}

/**
 * Open a backup blob made for `username`. The private keys come back **extractable**
 * (the caller re-imports them non-extractable before storing; see keys/setup.js).
 * @param {Uint8Array | ArrayBuffer} blob
 * @param {string} passphrase
 * @param {string} username
 * @returns {Promise<{protector: string, signing: {algorithm: string, privateKey: any,
 *   spki: Uint8Array, serial: string}, encryption: {privateKey: CryptoKey,
 *   spki: Uint8Array, serial: string}}>}
 * @throws {BackupError} `backup_passphrase_wrong` when the passphrase (or the username,
 *   which is bound in) does not open it; `backup_invalid` when it is malformed
 */
export async function decryptBackup(blob, passphrase, username) {
  const parsed = parseBackup(blob);
  const key = await deriveKey(passphrase, parsed.salt, parsed.iterations, "decrypt");
  let plaintext;
  try {
    plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: parsed.iv, additionalData: aad(username) },
      key,
      parsed.ciphertext,
    );
  } catch {
    // GCM cannot tell a wrong passphrase from a blob made for someone else or altered;
    // all three are "this does not open", and the message says so without guessing.
    throw new BackupError(
      "backup_passphrase_wrong",
      "This password does not open the key backup (or the backup is not this account's).",
    );
  }
  let body;
  try {
    body = JSON.parse(fromUtf8(new Uint8Array(plaintext)));
  } catch {
    throw new BackupError("backup_invalid", "The key backup's content is not readable.");
  }
  if (body?.v !== FORMAT_VERSION || body.username !== username || !body.signing || !body.encryption) {
    throw new BackupError("backup_invalid", "The key backup's content is not a key pair.");
  }
  let signing;
  let encryption;
  let signingSpki;
  let encryptionSpki;
  try {
    signing = await importSigningKey(body.signing.private, { extractable: true });
    encryption = await importEncryptionKey(body.encryption.private, { extractable: true });
    signingSpki = b64decode(body.signing.spki);
    encryptionSpki = b64decode(body.encryption.spki);
  } catch {
    throw new BackupError("backup_invalid", "The keys in the backup cannot be imported.");
  }
  // The signing SPKI is recomputed from the private key on import: it must be the one
  // the backup names (the encryption pair is proven by the next proof of possession).
  if (signing.algorithm !== body.signing.algorithm || !equalBytes(signing.spki, signingSpki)) {
    throw new BackupError("backup_invalid", "The key backup's signing key does not match its public key.");
  }
  return {
    protector: parsed.protector,
    signing: {
      algorithm: signing.algorithm,
      privateKey: signing.privateKey,
      spki: signingSpki,
      serial: String(body.signing.serial ?? ""),
    },
    encryption: {
      privateKey: encryption,
      spki: encryptionSpki,
      serial: String(body.encryption.serial ?? ""),
    },
  };
}

/**
 * The user's backup blob on the server, or null when there is none (`no_backup`).
 * @param {{getJson: Function}} http
 * @returns {Promise<Uint8Array | null>}
 */
export async function downloadBackup(http) {
  try {
    const stored = await http.getJson("/api/keys/backup/");
    return b64decode(stored.blob);
  } catch (error) {
    if (error?.code === "no_backup") return null;
    throw error;
  }
}

/**
 * Store `blob` as the user's backup, replacing any. Reads the stored version first and
 * writes version + 1; if another device wrote in between, the server answers 409
 * `backup_version_conflict` and this throws it (an HttpError) rather than overwrite.
 * @param {{getJson: Function, putJson: Function}} http
 * @param {Uint8Array} blob from encryptBackup
 * @returns {Promise<{version: number}>}
 */
export async function uploadBackup(http, blob) {
  const bytes = toBytes(blob);
  if (bytes.length === 0 || bytes.length > BACKUP_MAX_BYTES) {
    throw new BackupError("backup_size", "A key backup must hold 1 byte to 64 KiB.");
  }
  let version = 0;
  try {
    version = (await http.getJson("/api/keys/backup/")).version;
  } catch (error) {
    if (error?.code !== "no_backup") throw error;
  }
  const stored = await http.putJson("/api/keys/backup/", {
    blob: b64encode(bytes),
    version: version + 1,
  });
  return { version: stored.version };
}
