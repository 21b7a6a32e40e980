// RSA-OAEP and AES-256-GCM: what Python wrapped and encrypted opens in JS, what JS makes
// round-trips, and every refusal has Python's code.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { b64decode, equalBytes, utf8 } from "../src/crypto/bytes.js";
import { decodeBody } from "../src/crypto/body.js";
import { CryptoError } from "../src/crypto/errors.js";
import { generateSigningKey } from "../src/crypto/signing.js";
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  exportEncryptionKey,
  generateEncryptionKey,
  importEncryptionKey,
  newEpochKey,
  oaepDecrypt,
  oaepEncrypt,
} from "../src/crypto/wrapping.js";

const FIXTURES = JSON.parse(readFileSync(new URL("./fixtures/python_fixtures.json", import.meta.url), "utf8"));
const OPENED = FIXTURES.opened;
const code = (expected) => (error) => error instanceof CryptoError && error.code === expected;

const alice = () => importEncryptionKey(FIXTURES.alice_encryption_pkcs8);

test("an epoch key wrapped by Python opens with the JS import of the same private key", async () => {
  const key = await oaepDecrypt(await alice(), b64decode(OPENED.wrapped_key));
  assert.ok(equalBytes(key, b64decode(OPENED.epoch_key)));
});

test("a message Python encrypted decrypts in JS with its header as associated data", async () => {
  const plaintext = await aesGcmDecrypt(
    b64decode(OPENED.epoch_key),
    b64decode(OPENED.iv),
    b64decode(OPENED.ciphertext),
    b64decode(OPENED.header),
  );
  assert.equal(decodeBody(plaintext), OPENED.text);
});

test("a changed ciphertext, tag or header does not decrypt", async () => {
  const key = b64decode(OPENED.epoch_key);
  const iv = b64decode(OPENED.iv);
  const ciphertext = b64decode(OPENED.ciphertext);
  const header = b64decode(OPENED.header);
  const first = ciphertext.slice();
  first[0] ^= 1;
  const tag = ciphertext.slice();
  tag[tag.length - 1] ^= 1;
  const otherHeader = header.slice();
  otherHeader[otherHeader.length - 1] ^= 1;
  await assert.rejects(aesGcmDecrypt(key, iv, first, header), code("decrypt_failed"));
  await assert.rejects(aesGcmDecrypt(key, iv, tag, header), code("decrypt_failed"));
  await assert.rejects(aesGcmDecrypt(key, iv, ciphertext, otherHeader), code("decrypt_failed"));
  await assert.rejects(aesGcmDecrypt(key, iv.subarray(1), ciphertext, header), code("bad_iv"));
  await assert.rejects(aesGcmDecrypt(key.subarray(16), iv, ciphertext, header), code("bad_key"));
});

test("AES-GCM in JS: a fresh 12-byte IV each time and the 16-byte tag appended", async () => {
  const key = newEpochKey();
  assert.equal(key.length, 32);
  const aad = utf8("header");
  const one = await aesGcmEncrypt(key, utf8("hello"), aad);
  const two = await aesGcmEncrypt(key, utf8("hello"), aad);
  assert.equal(one.iv.length, 12);
  assert.equal(one.ciphertext.length, 5 + 16);
  assert.ok(!equalBytes(one.iv, two.iv));
  assert.deepEqual(await aesGcmDecrypt(key, one.iv, one.ciphertext, aad), utf8("hello"));
  await assert.rejects(aesGcmEncrypt(new Uint8Array(16), utf8("x"), aad), code("bad_key"));
});

test("OAEP in JS: a wrapped key is the modulus size and opens only with its own key", async () => {
  const mine = await generateEncryptionKey(2048);
  const other = await generateEncryptionKey(2048);
  const secret = newEpochKey();
  const wrapped = await oaepEncrypt(mine.spki, secret);
  assert.equal(wrapped.length, 256);
  assert.deepEqual(await oaepDecrypt(mine.privateKey, wrapped), secret);
  await assert.rejects(oaepDecrypt(other.privateKey, wrapped), code("unwrap_failed"));
  const flipped = wrapped.slice();
  flipped[10] ^= 1;
  await assert.rejects(oaepDecrypt(mine.privateKey, flipped), code("unwrap_failed"));
});

test("OAEP refuses keys that are not RSA", async () => {
  const ed = await generateSigningKey("ed25519");
  await assert.rejects(oaepEncrypt(ed.spki, newEpochKey()), code("unsupported_key"));
  await assert.rejects(oaepDecrypt(ed.privateKey, new Uint8Array(256)), code("unsupported_key"));
});

test("an encryption key survives export and import, non-extractable by default", async () => {
  const pair = await generateEncryptionKey(2048);
  const exported = await exportEncryptionKey(pair.privateKey);
  const imported = await importEncryptionKey(exported);
  assert.equal(imported.extractable, false);
  const wrapped = await oaepEncrypt(pair.spki, utf8("secret"));
  assert.deepEqual(await oaepDecrypt(imported, wrapped), utf8("secret"));
  assert.equal((await importEncryptionKey(exported, { extractable: true })).extractable, true);
  await assert.rejects(importEncryptionKey("AAAA"), code("malformed_key"));
});

test("the default encryption key is RSA-3072", async () => {
  const pair = await generateEncryptionKey();
  assert.equal(pair.privateKey.algorithm.modulusLength, 3072);
  assert.equal((await oaepEncrypt(pair.spki, newEpochKey())).length, 384);
});
