// Key fingerprints and pairwise safety numbers, exactly as cryptokit/fingerprints.py
// defines them (protocol.md §3.3, fixed by cryptokit/vectors/safety_numbers.json).

import { asBytes, compareBytes, concatBytes, sha256, toHex, utf8 } from "./bytes.js";

const SAFETY_TAG = utf8("securechat.safety-number.v1");
const SAFETY_GROUPS = 6;
const SAFETY_GROUP_BYTES = 5;

/**
 * SHA-256 of the SubjectPublicKeyInfo, uppercase hex in 16 groups of 4.
 * @param {Uint8Array} spki DER
 * @returns {Promise<string>}
 */
export async function fingerprint(spki) {
  const hex = toHex(await sha256(spki)).toUpperCase();
  return hex.match(/.{4}/g).join(" ");
}

function lengthPrefixed(bytes) {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, bytes.length);
  return concatBytes(prefix, bytes);
}

/**
 * Six groups of five digits, the same whichever of the two users computes it:
 * the (UTF-8 username, SPKI) pairs sorted bytewise (name first, SPKI on a tie), SHA-512
 * of the tag and each pair's u32be-length-prefixed fields, then the first 30 bytes as
 * six 5-byte big-endian integers mod 100000. Sorting compares encoded bytes because
 * JavaScript's default string order (UTF-16 units) disagrees beyond U+FFFF.
 * @param {string} userA
 * @param {Uint8Array} spkiA
 * @param {string} userB
 * @param {Uint8Array} spkiB
 * @returns {Promise<string>} e.g. "01234 56789 01234 56789 01234 56789"
 */
export async function safetyNumber(userA, spkiA, userB, spkiB) {
  const pairs = [
    [utf8(userA), asBytes(spkiA)],
    [utf8(userB), asBytes(spkiB)],
  ].sort((x, y) => compareBytes(x[0], y[0]) || compareBytes(x[1], y[1]));
  const data = concatBytes(SAFETY_TAG, ...pairs.flatMap(([name, spki]) => [lengthPrefixed(name), lengthPrefixed(spki)]));
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-512", data));
  const groups = [];
  for (let i = 0; i < SAFETY_GROUPS * SAFETY_GROUP_BYTES; i += SAFETY_GROUP_BYTES) {
    let value = 0n;
    for (const byte of digest.subarray(i, i + SAFETY_GROUP_BYTES)) value = (value << 8n) | BigInt(byte);
    groups.push((value % 100000n).toString().padStart(5, "0"));
  }
  return groups.join(" ");
}
