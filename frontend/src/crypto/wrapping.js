// RSA-OAEP-SHA256 key wrapping and AES-256-GCM message encryption; the port of
// cryptokit/wrapping.py (protocol.md §3.2).
//
// * OAEP: SHA-256, MGF1-SHA256, empty label (WebCrypto's RSA-OAEP with hash SHA-256).
// * AES-256-GCM: a 32-byte key, a random 12-byte IV per message, the 16-byte tag appended
//   to the ciphertext (WebCrypto's layout), the message header as associated data.
//
// Error codes are Python's: `unsupported_key`, `unwrap_failed`, `bad_key`, `bad_iv`,
// `decrypt_failed` (the conversation engine turns `unwrap_failed` into
// `key_does_not_open`, as the Python client does).

import { asBytes, b64decode, b64encode, randomBytes } from "./bytes.js";
import { CryptoError } from "./errors.js";

export const KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

const OAEP_IMPORT = { name: "RSA-OAEP", hash: "SHA-256" };
const RSA_EXPONENT = new Uint8Array([1, 0, 1]);

const subtle = () => globalThis.crypto.subtle;

/**
 * A new RSA key pair for OAEP key wrapping; the private key is extractable so the key
 * backup can export it.
 * @param {number} [bits=3072]
 * @returns {Promise<{privateKey: CryptoKey, spki: Uint8Array}>}
 */
export async function generateEncryptionKey(bits = 3072) {
  const pair = await subtle().generateKey(
    { ...OAEP_IMPORT, modulusLength: bits, publicExponent: RSA_EXPONENT },
    true,
    ["encrypt", "decrypt"],
  );
  const spki = new Uint8Array(await subtle().exportKey("spki", pair.publicKey));
  return { privateKey: pair.privateKey, spki };
}

/**
 * Wrap `data` (an epoch key, a challenge secret) for the RSA key in `spki`.
 * @param {Uint8Array} spki DER
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>} as long as the modulus
 * @throws {CryptoError} `unsupported_key` when the SPKI is not an RSA key
 */
export async function oaepEncrypt(spki, data) {
  let key;
  try {
    key = await subtle().importKey("spki", asBytes(spki), OAEP_IMPORT, false, ["encrypt"]);
  } catch {
    throw new CryptoError("unsupported_key", "Only RSA keys can wrap with OAEP.");
  }
  return new Uint8Array(await subtle().encrypt({ name: "RSA-OAEP" }, key, asBytes(data)));
}

/**
 * Unwrap with an RSA-OAEP private key.
 * @param {CryptoKey} privateKey
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 * @throws {CryptoError} `unsupported_key`, or `unwrap_failed` for any padding failure
 */
export async function oaepDecrypt(privateKey, data) {
  if (!(privateKey instanceof CryptoKey) || privateKey.algorithm.name !== "RSA-OAEP" || privateKey.type !== "private") {
    throw new CryptoError("unsupported_key", "Only RSA keys can unwrap with OAEP.");
  }
  try {
    return new Uint8Array(await subtle().decrypt({ name: "RSA-OAEP" }, privateKey, asBytes(data)));
  } catch {
    // One message for every failure: no oracle on why it failed.
    throw new CryptoError("unwrap_failed", "The wrapped key cannot be opened with this key.");
  }
}

/**
 * 32 random bytes from the platform CSPRNG, an AES-256 key.
 * @returns {Uint8Array}
 */
export function newEpochKey() {
  return randomBytes(KEY_BYTES);
}

/**
 * An AES-GCM CryptoKey from raw epoch key bytes (exactly 32: a member-made key must not
 * quietly downgrade the conversation to AES-128), or the CryptoKey itself when given one.
 * @param {Uint8Array|CryptoKey} key
 * @returns {Promise<CryptoKey>}
 * @throws {CryptoError} `bad_key`
 */
export async function importEpochKey(key) {
  if (key instanceof CryptoKey) {
    if (key.algorithm.name !== "AES-GCM" || key.algorithm.length !== KEY_BYTES * 8) {
      throw new CryptoError("bad_key", "An epoch key is a 256-bit AES-GCM key.");
    }
    return key;
  }
  let raw;
  try {
    raw = asBytes(key);
  } catch {
    throw new CryptoError("bad_key", "An epoch key is 32 bytes.");
  }
  if (raw.length !== KEY_BYTES) throw new CryptoError("bad_key", "An epoch key is 32 bytes.");
  return subtle().importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

/**
 * Encrypt under a fresh random 96-bit IV (safe for 2**32 messages per key; epochs rotate
 * long before that).
 * @param {Uint8Array|CryptoKey} key 32 bytes, or an AES-256-GCM CryptoKey
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} aad the message header
 * @returns {Promise<{iv: Uint8Array, ciphertext: Uint8Array}>} ciphertext ends with the 16-byte tag
 * @throws {CryptoError} `bad_key`
 */
export async function aesGcmEncrypt(key, plaintext, aad) {
  const aesKey = await importEpochKey(key);
  const iv = randomBytes(IV_BYTES);
  const ciphertext = await subtle().encrypt(
    { name: "AES-GCM", iv, additionalData: asBytes(aad), tagLength: TAG_BYTES * 8 },
    aesKey,
    asBytes(plaintext),
  );
  return { iv, ciphertext: new Uint8Array(ciphertext) };
}

/**
 * Decrypt and authenticate.
 * @param {Uint8Array|CryptoKey} key
 * @param {Uint8Array} iv 12 bytes
 * @param {Uint8Array} ciphertext with its tag
 * @param {Uint8Array} aad the message header
 * @returns {Promise<Uint8Array>}
 * @throws {CryptoError} `bad_key`, `bad_iv` or `decrypt_failed`
 */
export async function aesGcmDecrypt(key, iv, ciphertext, aad) {
  const aesKey = await importEpochKey(key);
  const nonce = asBytes(iv);
  if (nonce.length !== IV_BYTES) throw new CryptoError("bad_iv", "The IV must be 12 bytes.");
  try {
    const plaintext = await subtle().decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: asBytes(aad), tagLength: TAG_BYTES * 8 },
      aesKey,
      asBytes(ciphertext),
    );
    return new Uint8Array(plaintext);
  } catch {
    throw new CryptoError("decrypt_failed", "The message does not decrypt (tampered?).");
  }
}

/**
 * PKCS#8 of an extractable RSA-OAEP private key, base64 (for the encrypted key backup).
 * @param {CryptoKey} privateKey
 * @returns {Promise<string>}
 */
export async function exportEncryptionKey(privateKey) {
  return b64encode(new Uint8Array(await subtle().exportKey("pkcs8", privateKey)));
}

/**
 * An RSA-OAEP (SHA-256) private key from PKCS#8 base64, non-extractable unless asked.
 * @param {string} pkcs8b64
 * @param {{extractable?: boolean}} [options]
 * @returns {Promise<CryptoKey>}
 * @throws {CryptoError} `malformed_key`
 */
export async function importEncryptionKey(pkcs8b64, { extractable = false } = {}) {
  try {
    return await subtle().importKey("pkcs8", b64decode(pkcs8b64), OAEP_IMPORT, extractable, ["decrypt"]);
  } catch {
    throw new CryptoError("malformed_key", "The exported encryption key cannot be imported.");
  }
}
