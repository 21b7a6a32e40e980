// Message bodies (protocol.md §3.2): {"v": 1, "text": ...} in UTF-8, else bad_body.

import assert from "node:assert/strict";
import { test } from "node:test";

import { utf8 } from "../src/crypto/bytes.js";
import { decodeBody, encodeBody } from "../src/crypto/body.js";
import { CryptoError } from "../src/crypto/errors.js";

const badBody = (error) => error instanceof CryptoError && error.code === "bad_body";

test("a body round-trips any text, astral characters and quotes included", () => {
  for (const text of ["", "hello", 'she said "hi"\n', "Grüße 🐍 \u{20000}"]) {
    assert.equal(decodeBody(encodeBody(text)), text);
  }
});

test("a body is the versioned JSON object of the protocol", () => {
  assert.deepEqual(JSON.parse(new TextDecoder().decode(encodeBody("x"))), { v: 1, text: "x" });
});

test("the body Python writes decodes, and unknown fields are ignored within version 1", () => {
  assert.equal(decodeBody(utf8('{"v": 1, "text": "Grüße"}')), "Grüße");
  assert.equal(decodeBody(utf8('{"v": 1, "text": "x", "attachments": []}')), "x");
});

test("anything else is bad_body", () => {
  const cases = [
    "not json",
    "[1]",
    "null",
    '"text"',
    '{"text": "no version"}',
    '{"v": 2, "text": "future"}',
    '{"v": "1", "text": "string version"}',
    '{"v": 1}',
    '{"v": 1, "text": 5}',
    '\uFEFF{"v": 1, "text": "BOM"}',
  ];
  for (const text of cases) assert.throws(() => decodeBody(utf8(text)), badBody, text);
  assert.throws(() => decodeBody(new Uint8Array([0x7b, 0xff, 0x7d])), badBody, "invalid UTF-8");
});
