// Every case of cryptokit/vectors/encoding.json, built by the JS encodings byte for byte,
// and every `refused` case refused.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { fromHex, toHex } from "../src/crypto/bytes.js";
import {
  distributionRecord,
  encode,
  membershipStatement,
  messageHeader,
  messageSignedBytes,
  popChallenge,
} from "../src/crypto/encoding.js";
import { CryptoError } from "../src/crypto/errors.js";

const VECTORS = JSON.parse(readFileSync(new URL("../../cryptokit/vectors/encoding.json", import.meta.url), "utf8"));

// The vectors' inputs are Python keyword arguments (snake_case, bytes as hex); these turn
// them into the JS functions' arguments.
const BUILDERS = {
  message_header: (i) =>
    messageHeader({
      conversationId: i.conversation_id,
      epoch: i.epoch,
      sender: i.sender,
      senderSerial: i.sender_serial,
      device: i.device,
      sequence: i.sequence,
      timestampMs: i.timestamp_ms,
    }),
  message_signed_bytes: (i) =>
    messageSignedBytes({ header: fromHex(i.header), iv: fromHex(i.iv), ciphertext: fromHex(i.ciphertext) }),
  distribution_record: (i) =>
    distributionRecord({
      conversationId: i.conversation_id,
      epoch: i.epoch,
      previousEpoch: i.previous_epoch,
      rosterEpoch: i.roster_epoch,
      keyOrigin: i.key_origin,
      signer: i.signer,
      signerSerial: i.signer_serial,
      members: i.members.map(([username, serial, wrapped]) => ({ username, serial, wrappedKey: fromHex(wrapped) })),
      changes: i.changes.map(fromHex),
    }),
  membership_statement: (i) =>
    membershipStatement({
      conversationId: i.conversation_id,
      keyOrigin: i.key_origin,
      rosterEpoch: i.roster_epoch,
      action: i.action,
      subject: i.subject,
      subjectSigningSha256: fromHex(i.subject_signing_sha256),
      subjectEncryptionSha256: fromHex(i.subject_encryption_sha256),
      actor: i.actor,
      actorSerial: i.actor_serial,
      nonce: fromHex(i.nonce),
    }),
  pop_challenge: (i) =>
    popChallenge({
      username: i.username,
      nonce: fromHex(i.nonce),
      signingSpki: fromHex(i.signing_spki),
      encryptionSpki: fromHex(i.encryption_spki),
    }),
};

for (const [name, build] of Object.entries(BUILDERS)) {
  for (const vector of VECTORS[name]) {
    test(`${name} matches the Python vector: ${vector.name}`, async () => {
      assert.equal(toHex(await build(vector.input)), vector.hex);
    });
  }
}

test("the vectors cover every encoding and every refusal", () => {
  for (const name of Object.keys(BUILDERS)) assert.ok(VECTORS[name].length >= 2, name);
  assert.ok(VECTORS.refused.length >= 13);
});

for (const vector of VECTORS.refused) {
  test(`${vector.function} refuses: ${vector.why}`, async () => {
    await assert.rejects(
      async () => BUILDERS[vector.function](vector.input),
      (error) => error instanceof CryptoError && error.code === "bad_encoding",
    );
  });
}

test("integers use the whole unsigned 64-bit range and nothing past it", () => {
  assert.equal(toHex(encode(2n ** 64n - 1n)), `00000008${"ff".repeat(8)}`);
  assert.equal(toHex(encode(Number.MAX_SAFE_INTEGER)), "00000008001fffffffffffff");
  assert.throws(() => encode(2n ** 64n), CryptoError);
  assert.throws(() => encode(-1n), CryptoError);
  // A number JSON.parse already rounded is not an exact integer: refused, not rounded.
  assert.throws(() => encode(2 ** 53), CryptoError);
  assert.throws(() => encode(1.5), CryptoError);
  assert.throws(() => encode(true), CryptoError);
});

test("strings with a lone surrogate are refused instead of becoming U+FFFD", () => {
  assert.equal(toHex(encode("\u{20000}")), "00000004f0a08080");
  assert.throws(() => encode("bad\uD800"), CryptoError);
});

test("members are sorted by UTF-8 bytes, not by JavaScript's UTF-16 string order", async () => {
  const base = {
    conversationId: "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b",
    epoch: 2,
    previousEpoch: 1,
    rosterEpoch: 1,
    keyOrigin: "server",
    signer: "server",
    signerSerial: "1",
  };
  const astral = { username: "user\u{20000}", serial: "a", wrappedKey: new Uint8Array([1]) };
  const bmp = { username: "user\uFA0E", serial: "b", wrappedKey: new Uint8Array([2]) };
  assert.ok(astral.username < bmp.username, "UTF-16 order puts the astral name first");
  const one = await distributionRecord({ ...base, members: [astral, bmp] });
  const other = await distributionRecord({ ...base, members: [bmp, astral] });
  assert.deepEqual(one, other);
  const text = Buffer.from(one).toString("utf8");
  assert.ok(text.indexOf("user\uFA0E") < text.indexOf("user\u{20000}"), "UTF-8 order puts U+FA0E first");
});

test("a statement given twice in one record is refused", async () => {
  const change = new Uint8Array([1, 2, 3]);
  await assert.rejects(
    distributionRecord({
      conversationId: "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b",
      epoch: 2,
      previousEpoch: 1,
      rosterEpoch: 2,
      keyOrigin: "members",
      signer: "alice",
      signerSerial: "1",
      members: [{ username: "alice", serial: "1", wrappedKey: new Uint8Array([9]) }],
      changes: [change, change],
    }),
    (error) => error.code === "bad_encoding",
  );
});
