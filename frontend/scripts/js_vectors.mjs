#!/usr/bin/env node
// Print JSON of material made by the browser's crypto core, for Python to check
// (cryptokit/tests/test_js_interop.py): the other direction of the shared vectors.
//
//   node frontend/scripts/js_vectors.mjs <rsa-spki-base64> <dsa-parameters-json>
//
// <rsa-spki-base64>: an RSA encryption key (SPKI DER, base64) whose private half Python
// holds; every epoch key here is wrapped to it. <dsa-parameters-json>: {"p", "q", "g"}
// in hex, as GET /api/keys/ca/ publishes them (JS cannot make DSA parameters).
//
// For each signing algorithm, one fresh key of that algorithm signs: a message (header
// fields, header bytes, AES-GCM ciphertext under an epoch key wrapped to the given RSA
// key, signature), a members-origin distribution record applying a membership statement
// (both signed), and a proof-of-possession challenge. Keys are thrown away; only public
// keys and what they signed are printed.

import { b64decode, b64encode, randomBytes, toHex } from "../src/crypto/bytes.js";
import { encodeBody } from "../src/crypto/body.js";
import { distributionRecord, messageHeader, messageSignedBytes, popChallenge } from "../src/crypto/encoding.js";
import { Statement, keyHashes } from "../src/crypto/membership.js";
import { SIGNING_ALGORITHMS, generateSigningKey, sign } from "../src/crypto/signing.js";
import { aesGcmEncrypt, generateEncryptionKey, newEpochKey, oaepEncrypt } from "../src/crypto/wrapping.js";

const CONVERSATION = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b";
const SIGNER = "alice";
const PYTHON_MEMBER = "python";
const TEXT = "Grüße from JavaScript 🦀 \u{20000}";

function usage(problem) {
  process.stderr.write(`js_vectors: ${problem}\nusage: node js_vectors.mjs <rsa-spki-base64> <dsa-parameters-json>\n`);
  process.exit(2);
}

async function vectorsFor(algorithm, { pythonSpki, dsaParameters, ownEncryption }) {
  const signing = await generateSigningKey(algorithm, { dsaParameters, rsaBits: 2048 });
  const serial = toHex(randomBytes(8)).replace(/^0+/, "") || "1";
  const epochKey = newEpochKey();

  // A message in epoch 2, under the key the record below distributes.
  const headerInput = {
    conversation_id: CONVERSATION,
    epoch: 2,
    sender: SIGNER,
    sender_serial: serial,
    device: toHex(randomBytes(16)),
    sequence: 1,
    timestamp_ms: Date.now(),
  };
  const header = messageHeader({
    conversationId: headerInput.conversation_id,
    epoch: headerInput.epoch,
    sender: headerInput.sender,
    senderSerial: headerInput.sender_serial,
    device: headerInput.device,
    sequence: headerInput.sequence,
    timestampMs: headerInput.timestamp_ms,
  });
  const { iv, ciphertext } = await aesGcmEncrypt(epochKey, encodeBody(TEXT), header);
  const messageSignature = await sign(signing, messageSignedBytes({ header, iv, ciphertext }));

  // Epoch 2 of a members-origin chain whose epoch 1 had alice and bob: alice adds the
  // Python member (naming its key hashes) and wraps the new key for everyone with a key.
  const addition = await Statement.create({
    conversationId: CONVERSATION,
    signingKey: signing,
    action: "add",
    subject: PYTHON_MEMBER,
    actor: SIGNER,
    actorSerial: serial,
    rosterEpoch: 1,
    keyHashes: await keyHashes(pythonSpki, pythonSpki),
  });
  const members = [
    { username: PYTHON_MEMBER, serial: "5e", wrappedKey: await oaepEncrypt(pythonSpki, epochKey) },
    { username: SIGNER, serial: "a1", wrappedKey: await oaepEncrypt(ownEncryption.spki, epochKey) },
    { username: "bob", serial: "", wrappedKey: new Uint8Array() }, // listed without a key
  ];
  const recordFields = {
    conversationId: CONVERSATION,
    epoch: 2,
    previousEpoch: 1,
    rosterEpoch: 2,
    keyOrigin: "members",
    signer: SIGNER,
    signerSerial: serial,
    members,
    changes: [addition.signedBytes(CONVERSATION)],
  };
  const recordSignature = await sign(signing, await distributionRecord(recordFields));

  // Proof of possession, with the JS encryption key as the pair's second key.
  const nonce = randomBytes(32);
  const popSignature = await sign(
    signing,
    popChallenge({ username: SIGNER, nonce, signingSpki: signing.spki, encryptionSpki: ownEncryption.spki }),
  );

  return {
    algorithm,
    spki: b64encode(signing.spki),
    message: {
      header_input: headerInput,
      header: b64encode(header),
      iv: b64encode(iv),
      ciphertext: b64encode(ciphertext),
      signature: b64encode(messageSignature),
      text: TEXT,
    },
    record: {
      conversation: CONVERSATION,
      epoch: 2,
      previous_epoch: 1,
      roster_epoch: 2,
      key_origin: "members",
      signer: SIGNER,
      signer_serial: serial,
      signature: b64encode(recordSignature),
      changes: [addition.toJSON()],
      members: members.map((m) => ({ username: m.username, serial: m.serial, wrapped_key: b64encode(m.wrappedKey) })),
      previous_members: [SIGNER, "bob"],
    },
    pop: { username: SIGNER, nonce: b64encode(nonce), signature: b64encode(popSignature) },
  };
}

async function main() {
  const [spkiText, dsaText] = process.argv.slice(2);
  if (!spkiText || !dsaText) usage("both arguments are required");
  let pythonSpki;
  let dsaParameters;
  try {
    pythonSpki = b64decode(spkiText);
    dsaParameters = JSON.parse(dsaText);
  } catch {
    usage("the SPKI must be base64 and the DSA parameters JSON");
  }
  const ownEncryption = await generateEncryptionKey(2048);
  const algorithms = [];
  for (const algorithm of SIGNING_ALGORITHMS) {
    algorithms.push(await vectorsFor(algorithm, { pythonSpki, dsaParameters, ownEncryption }));
  }
  const output = { conversation: CONVERSATION, encryption_spki: b64encode(ownEncryption.spki), algorithms };
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
}

main().catch((error) => {
  process.stderr.write(`js_vectors: ${error.code ?? error.name}: ${error.message}\n`);
  process.exit(1);
});
