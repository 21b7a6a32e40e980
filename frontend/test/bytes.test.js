// Byte helpers: base64 as Python writes it (strict on input), hex, UTF-8, ordering.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  b64decode,
  b64encode,
  compareBytes,
  concatBytes,
  equalBytes,
  fromHex,
  fromUtf8,
  randomBytes,
  sha256,
  toHex,
  utf8,
} from "../src/crypto/bytes.js";
import { CryptoError } from "../src/crypto/errors.js";

test("base64 matches Python's b64encode for every padding length", () => {
  assert.equal(b64encode(new Uint8Array()), "");
  assert.equal(b64encode(utf8("f")), "Zg==");
  assert.equal(b64encode(utf8("fo")), "Zm8=");
  assert.equal(b64encode(utf8("foo")), "Zm9v");
  assert.equal(b64encode(new Uint8Array([0xfb, 0xff, 0xfe])), "+//+");
  const bytes = randomBytes(1000);
  assert.equal(b64encode(bytes), Buffer.from(bytes).toString("base64"));
  assert.deepEqual(b64decode(b64encode(bytes)), bytes);
});

test("base64 input that is not standard padded base64 is refused", () => {
  for (const text of ["Zg", "Zg=", "Z===", "Zm9v\n", "-_8=", "Zh==", "Zm9=", "Zm 9v", 5]) {
    assert.throws(() => b64decode(text), (e) => e instanceof CryptoError && e.code === "bad_base64", String(text));
  }
});

test("hex, UTF-8 and concatenation", () => {
  assert.equal(toHex(new Uint8Array([0, 15, 255])), "000fff");
  assert.deepEqual(fromHex("000FfF"), new Uint8Array([0, 15, 255]));
  assert.throws(() => fromHex("abc"), CryptoError);
  assert.equal(fromUtf8(utf8("zoë \u{20000}")), "zoë \u{20000}");
  assert.throws(() => fromUtf8(new Uint8Array([0xc3])), TypeError);
  assert.deepEqual(concatBytes(new Uint8Array([1]), new Uint8Array(), new Uint8Array([2, 3])), new Uint8Array([1, 2, 3]));
});

test("comparison is bytewise, shorter prefix first, as Python orders bytes", () => {
  assert.ok(compareBytes(new Uint8Array([1]), new Uint8Array([1, 0])) < 0);
  assert.ok(compareBytes(new Uint8Array([2]), new Uint8Array([1, 255])) > 0);
  assert.equal(compareBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), 0);
  assert.ok(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!equalBytes(new Uint8Array([1, 2]), new Uint8Array([1])));
});

test("sha256 is SHA-256, and randomBytes fills large buffers", async () => {
  assert.equal(toHex(await sha256(utf8("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const big = randomBytes(70000);
  assert.equal(big.length, 70000);
  assert.ok(big.subarray(66000).some((b) => b !== 0), "the part past 65536 bytes is random too");
});
