// ConversationState (the port of client/securechat_client/conversation.py): records and
// messages built here with the JS core are accepted, and each refusal carries the Python
// client's code. A server-origin record and a message made by Python are accepted too.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { before, test } from "node:test";

import { b64decode, b64encode, utf8 } from "../src/crypto/bytes.js";
import { distributionRecord, messageHeader, messageSignedBytes } from "../src/crypto/encoding.js";
import { CryptoError } from "../src/crypto/errors.js";
import { Statement, keyHashes } from "../src/crypto/membership.js";
import { generateSigningKey, sign } from "../src/crypto/signing.js";
import { aesGcmEncrypt, generateEncryptionKey, importEncryptionKey, newEpochKey, oaepEncrypt } from "../src/crypto/wrapping.js";
import { ConversationState } from "../src/engine/conversation.js";

const FIXTURES = JSON.parse(readFileSync(new URL("./fixtures/python_fixtures.json", import.meta.url), "utf8"));
const ID = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b";
const NAMES = ["alice", "bob", "carol", "dave", "server"];
const users = {};

before(async () => {
  let serial = 0x10;
  for (const name of NAMES) {
    const signing = await generateSigningKey(name === "server" ? "ecdsa-p256" : "ed25519");
    const encryption = await generateEncryptionKey(2048);
    users[name] = {
      name,
      signing: { ...signing, serial: (serial++).toString(16) },
      encryption: { ...encryption, serial: (serial++).toString(16) },
      device: (serial++).toString(16).padStart(32, "0"),
    };
  }
});

const refusedWith = (code) => (error) => error instanceof CryptoError && error.code === code;

/**
 * A signed epoch record as the server relays it: `members` get a fresh key wrapped to
 * their own encryption key unless `wrapFor` says otherwise; `statements` are applied.
 */
async function makeRecord({
  epoch,
  previous = epoch - 1,
  roster = epoch,
  signer,
  members,
  statements = [],
  origin = "members",
  key = newEpochKey(),
  wrapFor = (name) => users[name],
  conversation = ID,
}) {
  const listed = [];
  for (const name of members) {
    const target = wrapFor(name);
    listed.push({ username: name, serial: target.encryption.serial, wrappedKey: await oaepEncrypt(target.encryption.spki, key) });
  }
  const signerName = origin === "server" ? "server" : signer;
  const data = await distributionRecord({
    conversationId: conversation,
    epoch,
    previousEpoch: previous,
    rosterEpoch: roster,
    keyOrigin: origin,
    signer: signerName,
    signerSerial: users[signer].signing.serial,
    members: listed,
    changes: statements.map((s) => s.signedBytes(conversation)),
  });
  return {
    record: {
      conversation,
      epoch,
      previous_epoch: previous,
      roster_epoch: roster,
      reason: "rotation",
      key_origin: origin,
      signer: signerName,
      signer_serial: users[signer].signing.serial,
      signature: b64encode(await sign(users[signer].signing, data)),
      changes: statements.map((s) => s.toJSON()),
      members: listed.map((m) => ({ username: m.username, serial: m.serial, wrapped_key: b64encode(m.wrappedKey) })),
      created: new Date().toISOString(),
    },
    key,
  };
}

/** Accept `record` as `me` would after the caller's certificate and pin checks. */
function accept(state, me, record, statements = [], signer = record.signer === "server" ? "server" : record.signer) {
  return state.acceptEpoch(record, {
    me,
    myEncryptionKey: users[me].encryption.privateKey,
    signerSpki: users[signer].signing.spki,
    signerIsServer: record.signer === "server",
    statements,
  });
}

function statementBy(actor, action, subject, rosterEpoch, hashes) {
  return Statement.create({
    conversationId: ID,
    signingKey: users[actor].signing,
    action,
    subject,
    actor,
    actorSerial: users[actor].signing.serial,
    rosterEpoch,
    keyHashes: hashes,
  });
}

async function addition(actor, subject, rosterEpoch) {
  return statementBy(actor, "add", subject, rosterEpoch, await keyHashes(users[subject].signing.spki, users[subject].encryption.spki));
}

/** alice's members-origin conversation: epoch 1 for alice and bob, as alice and bob see it. */
async function membersChain() {
  const states = { alice: new ConversationState(ID, { createdBy: "alice" }), bob: new ConversationState(ID, { createdBy: "alice" }) };
  const { record } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "alice", members: ["alice", "bob"] });
  await accept(states.alice, "alice", record);
  await accept(states.bob, "bob", record);
  return states;
}

/** A message `sender` sends in `state` (the sender's own view). */
function send(state, sender, text) {
  const user = users[sender];
  return state.encrypt(text, { sender, device: user.device, signingKey: user.signing, signingSerial: user.signing.serial });
}

/** What the server relays for a sent body. */
function relayed(body, sender, order) {
  return { ...body, sender, order, sent_at: new Date().toISOString() };
}

test("server origin: a server-signed record gives both members the key, and messages flow", async () => {
  const alice = new ConversationState(ID);
  const bob = new ConversationState(ID);
  const { record } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "server", origin: "server", members: ["alice", "bob"] });
  await accept(alice, "alice", record);
  await accept(bob, "bob", record);
  assert.equal(alice.keyOrigin, "server");
  assert.equal(alice.currentEpoch, 1);
  assert.deepEqual(alice.newest.members, new Set(["alice", "bob"]));
  const body = await send(alice, "alice", "hello bob 👋");
  assert.equal(body.sequence, 1);
  assert.match(body.client_id, /^[0-9a-f-]{36}$/);
  const opened = await bob.decrypt(relayed(body, "alice", 1), { senderSpki: users.alice.signing.spki });
  assert.deepEqual(
    { ...opened },
    { conversation: ID, order: 1, epoch: 1, sender: "alice", text: "hello bob 👋", timestampMs: body.timestamp_ms, sequence: 1 },
  );
  assert.ok(bob.isDuplicate(1));
  assert.equal(bob.lastOrder, 1);
  assert.equal((await send(alice, "alice", "again")).sequence, 2);
});

test("a server-origin record and a message made by Python are accepted and opened", async () => {
  const { record, message, text } = FIXTURES.server_conversation;
  const certificates = FIXTURES.certificates;
  const state = new ConversationState(record.conversation);
  await state.acceptEpoch(record, {
    me: "alice",
    myEncryptionKey: await importEncryptionKey(FIXTURES.alice_encryption_pkcs8),
    signerSpki: b64decode(certificates.server_signing.spki),
    signerIsServer: true,
  });
  assert.equal(state.currentEpoch, 1);
  const opened = await state.decrypt(message, { senderSpki: b64decode(certificates.bob_signing.spki) });
  assert.equal(opened.text, text);
  assert.equal(opened.sender, "bob");
  // The same message again is a replay; a flipped ciphertext byte no longer verifies.
  await assert.rejects(state.decrypt(message, { senderSpki: b64decode(certificates.bob_signing.spki) }), refusedWith("replayed"));
  const ciphertext = b64decode(message.ciphertext);
  ciphertext[0] ^= 1;
  const tampered = { ...message, sequence: 2, ciphertext: b64encode(ciphertext) };
  await assert.rejects(state.decrypt(tampered, { senderSpki: b64decode(certificates.bob_signing.spki) }), refusedWith("bad_signature"));
});

test("server origin: a record not signed by the server, or signed with another key, is bad_distribution", async () => {
  const { record } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "server", origin: "server", members: ["alice"] });
  await assert.rejects(
    new ConversationState(ID).acceptEpoch(record, {
      me: "alice",
      myEncryptionKey: users.alice.encryption.privateKey,
      signerSpki: users.server.signing.spki,
      signerIsServer: false,
    }),
    refusedWith("bad_distribution"),
  );
  await assert.rejects(accept(new ConversationState(ID), "alice", record, [], "bob"), refusedWith("bad_distribution"));
  const forged = { ...record, members: [...record.members, { username: "mallory", serial: "", wrapped_key: "" }] };
  await assert.rejects(accept(new ConversationState(ID), "alice", forged), refusedWith("bad_distribution"));
});

test("origin_changed: the first origin learned is the conversation's for good", async () => {
  const state = new ConversationState(ID);
  state.fixKeyOrigin("server");
  const { record } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "alice", members: ["alice"] });
  await assert.rejects(accept(state, "alice", record), refusedWith("origin_changed"));
  assert.throws(() => state.fixKeyOrigin("members"), refusedWith("origin_changed"));
  assert.equal(state.keyOrigin, "server");
  assert.equal(state.epochs.size, 0);
  const fresh = new ConversationState(ID);
  assert.throws(() => fresh.fixKeyOrigin(undefined), refusedWith("bad_distribution"));
  assert.equal(fresh.keyOrigin, null, "an unknown origin is not fixed");
});

test("members origin: the creator's epoch 1 is accepted and makes them the owner", async () => {
  const { alice, bob } = await membersChain();
  assert.equal(alice.owner, "alice");
  assert.equal(bob.keyOrigin, "members");
  assert.equal(bob.rosterEpoch, 1);
  assert.equal(bob.currentEpoch, 1);
});

test("members origin: epoch 1 from someone else than the creator is signer_not_member", async () => {
  const state = new ConversationState(ID, { createdBy: "alice" });
  const { record } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "bob", members: ["alice", "bob"] });
  await assert.rejects(accept(state, "alice", record), refusedWith("signer_not_member"));
});

test("members origin: the server cannot sign a members-origin record", async () => {
  const state = new ConversationState(ID, { createdBy: "alice" });
  const { record } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "server", members: ["alice"] });
  const claimed = { ...record, key_origin: "members" };
  await assert.rejects(accept(state, "alice", claimed), refusedWith("bad_distribution"));
});

test("members origin: an addition signed by a member lets the newcomer in, roster moves on", async () => {
  const { bob } = await membersChain();
  const add = await addition("alice", "carol", 1);
  const { record } = await makeRecord({ epoch: 2, roster: 2, signer: "alice", members: ["alice", "bob", "carol"], statements: [add] });
  await accept(bob, "bob", record, [add]);
  assert.deepEqual(bob.newest.members, new Set(["alice", "bob", "carol"]));
  assert.equal(bob.rosterEpoch, 2);
  // A rotation without statements keeps the roster.
  const { record: rotation } = await makeRecord({ epoch: 3, roster: 2, signer: "carol", members: ["alice", "bob", "carol"] });
  await accept(bob, "bob", rotation);
  assert.equal(bob.rosterEpoch, 2);
  assert.equal(bob.currentEpoch, 3);
});

test("members_mismatch: a record adding or dropping someone without a statement", async () => {
  const { bob } = await membersChain();
  const { record: added } = await makeRecord({ epoch: 2, roster: 1, signer: "alice", members: ["alice", "bob", "mallory"], wrapFor: (n) => users[n === "mallory" ? "dave" : n] });
  await assert.rejects(accept(bob, "bob", added), refusedWith("members_mismatch"));
  const { record: dropped } = await makeRecord({ epoch: 2, roster: 1, signer: "alice", members: ["alice"] });
  await assert.rejects(accept(bob, "bob", dropped), refusedWith("members_mismatch"));
  assert.equal(bob.newest.number, 1, "a refused record is never applied");
});

test("signer_not_member: a key made by a non-member or by the member leaving", async () => {
  const { bob } = await membersChain();
  const { record: outsider } = await makeRecord({ epoch: 2, roster: 1, signer: "carol", members: ["alice", "bob"] });
  await assert.rejects(accept(bob, "bob", outsider), refusedWith("signer_not_member"));
  const { alice } = await membersChain();
  const leave = await statementBy("bob", "leave", "bob", 1);
  const { record: leaver } = await makeRecord({ epoch: 2, roster: 2, signer: "bob", members: ["alice"], statements: [leave] });
  await assert.rejects(accept(alice, "alice", leaver, [leave]), refusedWith("signer_not_member"));
});

test("not_owner and stale_statement come from the membership rule", async () => {
  const { alice } = await membersChain();
  const remove = await statementBy("bob", "remove", "alice", 1);
  const { record } = await makeRecord({ epoch: 2, roster: 2, signer: "bob", members: ["bob"], statements: [remove] });
  await assert.rejects(accept(alice, "alice", record, [remove]), refusedWith("not_owner"));
  const stale = await addition("bob", "carol", 7);
  const { record: staleRecord } = await makeRecord({ epoch: 2, roster: 2, signer: "bob", members: ["alice", "bob", "carol"], statements: [stale] });
  await assert.rejects(accept(alice, "alice", staleRecord, [stale]), refusedWith("stale_statement"));
});

test("a statement applied once cannot be replayed into a later record", async () => {
  const { bob } = await membersChain();
  const add = await addition("alice", "carol", 1);
  const first = await makeRecord({ epoch: 2, roster: 2, signer: "alice", members: ["alice", "bob", "carol"], statements: [add] });
  await accept(bob, "bob", first.record, [add]);
  const leave = await statementBy("carol", "leave", "carol", 2);
  const second = await makeRecord({ epoch: 3, roster: 3, signer: "alice", members: ["alice", "bob"], statements: [leave] });
  await accept(bob, "bob", second.record, [leave]);
  const replay = await makeRecord({ epoch: 4, roster: 4, signer: "alice", members: ["alice", "bob", "carol"], statements: [add] });
  await assert.rejects(accept(bob, "bob", replay.record, [add]), refusedWith("stale_statement"));
});

test("chain_gap: a record after one never seen, or one that forks the verified chain", async () => {
  const { bob } = await membersChain();
  const { record: two } = await makeRecord({ epoch: 2, roster: 1, signer: "alice", members: ["alice", "bob"] });
  await accept(bob, "bob", two);
  const { record: gap } = await makeRecord({ epoch: 4, previous: 3, roster: 1, signer: "alice", members: ["alice", "bob"] });
  await assert.rejects(accept(bob, "bob", gap), refusedWith("chain_gap"));
  const { record: fork } = await makeRecord({ epoch: 3, previous: 1, roster: 1, signer: "alice", members: ["alice", "bob"] });
  await assert.rejects(accept(bob, "bob", fork), refusedWith("chain_gap"));
});

test("a newcomer trusts its first record (TOFU) and checks every link after it", async () => {
  const carol = new ConversationState(ID, { createdBy: "alice" });
  const { record: first } = await makeRecord({ epoch: 5, roster: 5, signer: "alice", members: ["alice", "bob", "carol"] });
  await accept(carol, "carol", first);
  assert.equal(carol.currentEpoch, 5);
  const { record: next } = await makeRecord({ epoch: 6, roster: 5, signer: "bob", members: ["alice", "bob", "carol", "dave"] });
  await assert.rejects(accept(carol, "carol", next), refusedWith("members_mismatch"));
});

test("bad_distribution: a forged signature, another conversation, two records for one epoch", async () => {
  const { bob } = await membersChain();
  const { record } = await makeRecord({ epoch: 2, roster: 1, signer: "alice", members: ["alice", "bob"] });
  const signature = b64decode(record.signature);
  signature[0] ^= 1;
  await assert.rejects(accept(bob, "bob", { ...record, signature: b64encode(signature) }), refusedWith("bad_distribution"));
  await assert.rejects(accept(bob, "bob", { ...record, roster_epoch: 2 }), refusedWith("bad_distribution"));
  const other = await makeRecord({ epoch: 2, roster: 1, signer: "alice", members: ["alice", "bob"], conversation: "1b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b" });
  await assert.rejects(accept(bob, "bob", other.record), refusedWith("bad_distribution"));
  const { alice } = await membersChain();
  const { record: again } = await makeRecord({ epoch: 1, previous: 0, roster: 1, signer: "alice", members: ["alice"] });
  await assert.rejects(accept(alice, "alice", again), refusedWith("bad_distribution"));
});

test("key_does_not_open: the record joins the chain but gives no key", async () => {
  const { bob } = await membersChain();
  // Signed correctly, but bob's copy was wrapped to dave's key.
  const { record } = await makeRecord({ epoch: 2, roster: 1, signer: "alice", members: ["alice", "bob"], wrapFor: (n) => users[n === "bob" ? "dave" : n] });
  const forBob = { ...record, members: record.members.map((m) => (m.username === "bob" ? { ...m, serial: users.bob.encryption.serial } : m)) };
  // Re-sign with bob's serial listed (the server names bob's certificate; the wrap is bad).
  const data = await distributionRecord({
    conversationId: ID,
    epoch: 2,
    previousEpoch: 1,
    rosterEpoch: 1,
    keyOrigin: "members",
    signer: "alice",
    signerSerial: users.alice.signing.serial,
    members: forBob.members.map((m) => ({ username: m.username, serial: m.serial, wrappedKey: b64decode(m.wrapped_key) })),
  });
  forBob.signature = b64encode(await sign(users.alice.signing, data));
  await assert.rejects(accept(bob, "bob", forBob), refusedWith("key_does_not_open"));
  assert.ok(bob.epochs.has(2), "a valid link even though my key is broken");
  assert.ok(!bob.epochKeys.has(2));
  assert.equal(bob.currentEpoch, 1);
});

test("messages: replayed, not_member, bad_signature, no_epoch_key, decrypt_failed, bad_body", async () => {
  const { alice, bob } = await membersChain();
  const body = await send(alice, "alice", "first");
  const message = relayed(body, "alice", 1);
  await bob.decrypt(message, { senderSpki: users.alice.signing.spki });
  await assert.rejects(bob.decrypt({ ...message, order: 2 }, { senderSpki: users.alice.signing.spki }), refusedWith("replayed"));

  // carol is not a member of epoch 1, whatever she signs.
  const carolState = new ConversationState(ID);
  carolState.epochKeys = alice.epochKeys;
  const fromCarol = relayed(await send(carolState, "carol", "let me in"), "carol", 3);
  await assert.rejects(bob.decrypt(fromCarol, { senderSpki: users.carol.signing.spki }), refusedWith("not_member"));

  const next = relayed(await send(alice, "alice", "second"), "alice", 4);
  await assert.rejects(bob.decrypt(next, { senderSpki: users.bob.signing.spki }), refusedWith("bad_signature"));
  await assert.rejects(bob.decrypt({ ...next, timestamp_ms: next.timestamp_ms + 1 }, { senderSpki: users.alice.signing.spki }), refusedWith("bad_signature"));
  await assert.rejects(bob.decrypt({ ...next, device: "not-a-device" }, { senderSpki: users.alice.signing.spki }), refusedWith("bad_signature"));

  // Signed correctly over a ciphertext: under an epoch bob has no key for, under a wrong
  // key, and of a plaintext that is not a body.
  const forged = async (epoch, key, plaintext, sequence) => {
    const header = messageHeader({ conversationId: ID, epoch, sender: "alice", senderSerial: users.alice.signing.serial, device: users.alice.device, sequence, timestampMs: 1 });
    const { iv, ciphertext } = await aesGcmEncrypt(key, plaintext, header);
    const signature = await sign(users.alice.signing, messageSignedBytes({ header, iv, ciphertext }));
    return {
      conversation: ID,
      order: 10 + sequence,
      epoch,
      sender: "alice",
      sender_serial: users.alice.signing.serial,
      device: users.alice.device,
      sequence,
      timestamp_ms: 1,
      iv: b64encode(iv),
      ciphertext: b64encode(ciphertext),
      signature: b64encode(signature),
    };
  };
  const alicesKey = alice.epochKeys.get(1);
  await assert.rejects(bob.decrypt(await forged(9, newEpochKey(), utf8('{"v":1,"text":"x"}'), 10), { senderSpki: users.alice.signing.spki }), refusedWith("no_epoch_key"));
  await assert.rejects(bob.decrypt(await forged(1, newEpochKey(), utf8('{"v":1,"text":"x"}'), 11), { senderSpki: users.alice.signing.spki }), refusedWith("decrypt_failed"));
  await assert.rejects(bob.decrypt(await forged(1, alicesKey, utf8('{"v":2,"text":"x"}'), 12), { senderSpki: users.alice.signing.spki }), refusedWith("bad_body"));
  // None of the refused ones moved the counters: the genuine next message still opens.
  assert.equal((await bob.decrypt(next, { senderSpki: users.alice.signing.spki })).text, "second");
  assert.deepEqual([...bob.seenOrders].sort(), [1, 4]);
});

test("no_epoch_key: nothing is sent before a key arrives", async () => {
  const state = new ConversationState(ID);
  await assert.rejects(send(state, "alice", "too early"), refusedWith("no_epoch_key"));
});

test("sequences count per (sender, device): two devices of one user do not collide", async () => {
  const { alice, bob } = await membersChain();
  const one = await send(alice, "alice", "from tab one");
  const otherTab = new ConversationState(ID);
  otherTab.epochKeys = alice.epochKeys;
  const two = await otherTab.encrypt("from tab two", {
    sender: "alice",
    device: "f".repeat(32),
    signingKey: users.alice.signing,
    signingSerial: users.alice.signing.serial,
  });
  assert.equal(one.sequence, two.sequence);
  await bob.decrypt(relayed(one, "alice", 1), { senderSpki: users.alice.signing.spki });
  assert.equal((await bob.decrypt(relayed(two, "alice", 2), { senderSpki: users.alice.signing.spki })).text, "from tab two");
});

test("persistence keeps records and counters, no key, and replay re-verifies them", async () => {
  const { alice, bob } = await membersChain();
  const add = await addition("alice", "carol", 1);
  const { record: two } = await makeRecord({ epoch: 2, roster: 2, signer: "alice", members: ["alice", "bob", "carol"], statements: [add] });
  await accept(bob, "bob", two, [add]);
  await accept(alice, "alice", two, [add]);
  const message = relayed(await send(alice, "alice", "kept"), "alice", 7);
  await bob.decrypt(message, { senderSpki: users.alice.signing.spki });

  const text = JSON.stringify(bob);
  const rawKeys = [];
  for (const { record } of bob.records.values()) {
    const mine = record.members.find((m) => m.username === "bob");
    rawKeys.push(mine.wrapped_key);
  }
  assert.ok(rawKeys.every((wrapped) => text.includes(wrapped)), "the records, with their wrapped keys, are kept");

  const restored = ConversationState.fromJSON(JSON.parse(text));
  assert.equal(restored.epochs.size, 0);
  assert.equal(restored.epochKeys.size, 0);
  assert.equal(restored.keyOrigin, "members");
  assert.ok(restored.isDuplicate(7));
  const problems = await restored.replay((record, statements) =>
    accept(restored, "bob", record, statements.map((s) => Statement.fromJSON(s))),
  );
  assert.deepEqual(problems, []);
  assert.equal(restored.currentEpoch, 2);
  assert.equal(restored.owner, "alice");
  assert.deepEqual(restored.newest.members, new Set(["alice", "bob", "carol"]));
  await assert.rejects(restored.decrypt(message, { senderSpki: users.alice.signing.spki }), refusedWith("replayed"));

  // A record edited at rest fails its re-verification and is reported, not applied.
  const edited = JSON.parse(text);
  edited.records[1].record.members.push({ username: "mallory", serial: "", wrapped_key: "" });
  const tampered = ConversationState.fromJSON(edited);
  const refused = await tampered.replay((record, statements) =>
    accept(tampered, "bob", record, statements.map((s) => Statement.fromJSON(s))),
  );
  assert.deepEqual(refused.map((e) => e.code), ["bad_distribution"]);
  assert.equal(tampered.currentEpoch, 1);
  assert.throws(() => ConversationState.fromJSON({ version: 99 }), refusedWith("bad_state"));
});
