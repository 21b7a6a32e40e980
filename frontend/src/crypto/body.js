// The plaintext of a message (protocol.md §3.2): a versioned JSON object in UTF-8,
// {"v": 1, "text": "..."}. Other fields are ignored within version 1 (room for
// attachments and edits); anything else is `bad_body`, as in the Python client.

import { fromUtf8, utf8 } from "./bytes.js";
import { CryptoError } from "./errors.js";

export const BODY_VERSION = 1;

/**
 * The plaintext bytes of a message whose text is `text`.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function encodeBody(text) {
  if (typeof text !== "string") throw new TypeError("a message body's text is a string");
  return utf8(JSON.stringify({ v: BODY_VERSION, text }));
}

/**
 * The text of decrypted plaintext.
 * @param {Uint8Array} bytes
 * @returns {string}
 * @throws {CryptoError} `bad_body` when it is not UTF-8 JSON, not an object, its `v` is
 *   not 1 or its `text` is not a string
 */
export function decodeBody(bytes) {
  let body;
  try {
    body = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new CryptoError("bad_body", "The decrypted message is not a JSON body.");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body) || body.v !== BODY_VERSION) {
    throw new CryptoError("bad_body", "Unknown message body version.");
  }
  if (typeof body.text !== "string") throw new CryptoError("bad_body", "The message body has no text.");
  return body.text;
}
