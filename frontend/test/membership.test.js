// The membership rule (protocol.md §5.2, cryptokit/membership.py) and signed statements.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { fromHex, sha256, toHex } from "../src/crypto/bytes.js";
import { CryptoError } from "../src/crypto/errors.js";
import { Statement, keyHashes, newNonce, nextMembers, rosterAfter } from "../src/crypto/membership.js";
import { generateSigningKey } from "../src/crypto/signing.js";

const CONVERSATION = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b";
const ENCODING = JSON.parse(readFileSync(new URL("../../cryptokit/vectors/encoding.json", import.meta.url), "utf8"));
const SIGNATURES = JSON.parse(readFileSync(new URL("../../cryptokit/vectors/signatures.json", import.meta.url), "utf8"));

/** An unsigned statement for the set arithmetic (signatures are the caller's check). */
function statement(action, subject, actor, rosterEpoch = 1) {
  const hashes = action === "add" ? [new Uint8Array(32), new Uint8Array(32)] : [new Uint8Array(), new Uint8Array()];
  return new Statement({
    action,
    subject,
    actor,
    actorSerial: "1",
    rosterEpoch,
    nonce: newNonce(),
    signature: new Uint8Array(),
    subjectSigningSha256: hashes[0],
    subjectEncryptionSha256: hashes[1],
  });
}

const members = new Set(["alice", "bob", "carol"]);
const rule = (statements, owner = "alice") => nextMembers(members, { owner, rosterEpoch: 1, statements });
const refusedWith = (code) => (error) => error instanceof CryptoError && error.code === code;

test("additions by any member, own leaves and the owner's removals change the list", () => {
  assert.deepEqual(rule([]), members);
  assert.deepEqual(rule([statement("add", "dave", "bob")]), new Set(["alice", "bob", "carol", "dave"]));
  assert.deepEqual(rule([statement("leave", "bob", "bob")]), new Set(["alice", "carol"]));
  assert.deepEqual(rule([statement("remove", "carol", "alice")]), new Set(["alice", "bob"]));
  assert.deepEqual(
    rule([statement("add", "dave", "carol"), statement("leave", "bob", "bob"), statement("remove", "carol", "alice")]),
    new Set(["alice", "dave"]),
  );
});

test("a statement made for another roster is stale", () => {
  assert.throws(() => rule([statement("add", "dave", "bob", 2)]), refusedWith("stale_statement"));
});

test("a statement by a non-member is signer_not_member", () => {
  assert.throws(() => rule([statement("add", "erin", "dave")]), refusedWith("signer_not_member"));
});

test("only the owner removes, and the owner cannot be removed", () => {
  assert.throws(() => rule([statement("remove", "carol", "bob")]), refusedWith("not_owner"));
  assert.throws(() => rule([statement("remove", "dave", "alice")]), refusedWith("not_owner"));
  assert.throws(() => rule([statement("remove", "alice", "alice")]), refusedWith("bad_statement"));
});

test("bad statements: twice the same subject, adding a member, someone else's leave, unknown actions", () => {
  assert.throws(() => rule([statement("add", "dave", "bob"), statement("add", "dave", "carol")]), refusedWith("bad_statement"));
  assert.throws(() => rule([statement("leave", "bob", "bob"), statement("remove", "bob", "alice")]), refusedWith("bad_statement"));
  assert.throws(() => rule([statement("add", "carol", "bob")]), refusedWith("bad_statement"));
  const forgedLeave = new Statement({ ...statement("leave", "bob", "bob"), actor: "carol" });
  assert.throws(() => rule([forgedLeave]), refusedWith("bad_statement"));
  const promote = new Statement({ ...statement("leave", "bob", "bob"), action: "promote" });
  assert.throws(() => rule([promote]), refusedWith("bad_statement"));
});

test("the roster moves to the record's epoch only when it changes the list (or starts it)", () => {
  assert.equal(rosterAfter(5, 3, { changesMembers: true }), 5);
  assert.equal(rosterAfter(5, 3, { changesMembers: false }), 3);
  assert.equal(rosterAfter(1, 0, { changesMembers: false }), 1);
});

for (const algorithm of ["ed25519", "ecdsa-p256"]) {
  test(`${algorithm}: a created statement verifies, survives JSON, and fails for another conversation or key`, async () => {
    const key = await generateSigningKey(algorithm);
    const other = await generateSigningKey(algorithm);
    const hashes = await keyHashes(key.spki, other.spki);
    assert.deepEqual(hashes[0], await sha256(key.spki));
    const made = await Statement.create({
      conversationId: CONVERSATION,
      signingKey: key,
      action: "add",
      subject: "dave",
      actor: "alice",
      actorSerial: "a1",
      rosterEpoch: 3,
      keyHashes: hashes,
    });
    assert.equal(made.nonce.length, 16);
    await made.verify(CONVERSATION, key.spki);
    const wire = JSON.parse(JSON.stringify(made));
    assert.equal(wire.roster_epoch, 3);
    assert.equal(wire.actor_serial, "a1");
    const back = Statement.fromJSON(wire);
    assert.deepEqual(back.signedBytes(CONVERSATION), made.signedBytes(CONVERSATION));
    await back.verify(CONVERSATION, key.spki);
    await assert.rejects(back.verify(CONVERSATION, other.spki), refusedWith("bad_statement"));
    await assert.rejects(back.verify("1b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b", key.spki), refusedWith("bad_statement"));
    const tampered = Statement.fromJSON({ ...wire, subject: "mallory" });
    await assert.rejects(tampered.verify(CONVERSATION, key.spki), refusedWith("bad_statement"));
  });
}

test("a leave and a removal carry empty hashes on the wire", async () => {
  const key = await generateSigningKey("ed25519");
  const leave = await Statement.create({
    conversationId: CONVERSATION,
    signingKey: key,
    action: "leave",
    subject: "bob",
    actor: "bob",
    actorSerial: "b",
    rosterEpoch: 1,
  });
  const wire = leave.toJSON();
  assert.equal(wire.subject_signing_sha256, "");
  assert.equal(wire.subject_encryption_sha256, "");
  await Statement.fromJSON(wire).verify(CONVERSATION, key.spki);
});

test("statements Python signed (the signature vectors) verify through Statement", async () => {
  const input = ENCODING.membership_statement[0].input;
  const expected = ENCODING.membership_statement[0].hex;
  for (const key of SIGNATURES.keys) {
    const signed = key.cases.find((c) => c.valid && c.message === expected);
    assert.ok(signed, `${key.algorithm} signs the statement vector`);
    const made = new Statement({
      action: input.action,
      subject: input.subject,
      actor: input.actor,
      actorSerial: input.actor_serial,
      rosterEpoch: input.roster_epoch,
      nonce: fromHex(input.nonce),
      signature: fromHex(signed.signature),
      subjectSigningSha256: fromHex(input.subject_signing_sha256),
      subjectEncryptionSha256: fromHex(input.subject_encryption_sha256),
    });
    assert.equal(toHex(made.signedBytes(input.conversation_id)), expected);
    await made.verify(input.conversation_id, fromHex(key.spki));
  }
});

test("a malformed statement is bad_statement", () => {
  const good = {
    action: "leave",
    subject: "bob",
    actor: "bob",
    actor_serial: "b",
    roster_epoch: 1,
    nonce: "AAAAAAAAAAAAAAAAAAAAAA==",
    signature: "",
    subject_signing_sha256: "",
    subject_encryption_sha256: "",
  };
  assert.ok(Statement.fromJSON(good) instanceof Statement);
  for (const broken of [null, {}, { ...good, nonce: "!!" }, { ...good, roster_epoch: "1" }, { ...good, actor: 5 }]) {
    assert.throws(() => Statement.fromJSON(broken), refusedWith("bad_statement"));
  }
});
