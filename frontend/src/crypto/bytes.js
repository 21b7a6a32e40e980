// Byte helpers shared by every crypto module: base64, hex, UTF-8, comparison, SHA-256
// and randomness. Everything binary is a Uint8Array; the protocol's JSON carries it as
// standard base64 with padding (protocol.md §1).

import { CryptoError } from "./errors.js";

const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Standard alphabet, length a multiple of 4, at most two "=" and only at the end.
const B64_SHAPE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX_SHAPE = /^(?:[0-9a-fA-F]{2})*$/;
const DECODE = new Map([...B64_ALPHABET].map((c, i) => [c, i]));

/**
 * Standard base64 with padding (what Python's base64.b64encode gives).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function b64encode(bytes) {
  const data = asBytes(bytes);
  let out = "";
  for (let i = 0; i < data.length; i += 3) {
    const n = (data[i] << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0);
    out += B64_ALPHABET[(n >> 18) & 63] + B64_ALPHABET[(n >> 12) & 63];
    out += i + 1 < data.length ? B64_ALPHABET[(n >> 6) & 63] : "=";
    out += i + 2 < data.length ? B64_ALPHABET[n & 63] : "=";
  }
  return out;
}

/**
 * Decode standard base64 with padding; anything else (URL-safe letters, missing padding,
 * whitespace, non-zero trailing bits) is refused, so one value has one spelling.
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {CryptoError} `bad_base64`
 */
export function b64decode(text) {
  if (typeof text !== "string" || !B64_SHAPE.test(text)) {
    throw new CryptoError("bad_base64", "Not standard base64 with padding.");
  }
  const body = text.replace(/=+$/, "");
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const c of body) {
    value = (value << 6) | DECODE.get(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  if (value & ((1 << bits) - 1)) {
    throw new CryptoError("bad_base64", "Not canonical base64 (trailing bits set).");
  }
  return out;
}

/**
 * Lowercase hex.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toHex(bytes) {
  return Array.from(asBytes(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Parse hex (either case, even length).
 * @param {string} text
 * @returns {Uint8Array}
 * @throws {CryptoError} `bad_hex`
 */
export function fromHex(text) {
  if (typeof text !== "string" || !HEX_SHAPE.test(text)) {
    throw new CryptoError("bad_hex", "Not an even-length hex string.");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * UTF-8 bytes of a string.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  if (typeof text !== "string") throw new TypeError("utf8() takes a string");
  return new TextEncoder().encode(text);
}

/**
 * Decode UTF-8, refusing invalid sequences instead of replacing them with U+FFFD.
 * @param {Uint8Array} bytes
 * @returns {string}
 * @throws {TypeError} on invalid UTF-8
 */
export function fromUtf8(bytes) {
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(asBytes(bytes));
}

/**
 * One Uint8Array holding every argument in order.
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concatBytes(...parts) {
  const arrays = parts.map(asBytes);
  const out = new Uint8Array(arrays.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of arrays) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Byte equality. Not constant-time: only for public values (keys, hashes, serials).
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function equalBytes(a, b) {
  const x = asBytes(a);
  const y = asBytes(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Bytewise order (a shorter prefix first), the order Python gives `bytes`; for sorting.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {number} negative, 0 or positive
 */
export function compareBytes(a, b) {
  const x = asBytes(a);
  const y = asBytes(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i += 1) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * SHA-256 with WebCrypto.
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>} 32 bytes
 */
export async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", asBytes(bytes)));
}

/**
 * `n` bytes from the platform CSPRNG (getRandomValues caps one call at 65536 bytes).
 * @param {number} n
 * @returns {Uint8Array}
 */
export function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

/**
 * A Uint8Array view of binary input (ArrayBuffer and other views are accepted, since
 * WebCrypto hands back ArrayBuffers); anything else is a programming error.
 * @param {Uint8Array|ArrayBuffer|ArrayBufferView} value
 * @returns {Uint8Array}
 */
export function asBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError("expected bytes (a Uint8Array)");
}
