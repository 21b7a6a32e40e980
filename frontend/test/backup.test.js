// keys/backup.js: the encrypted key backup's format, round trip and refusals, with real
// WebCrypto keys (Node's crypto.subtle is the same API as the browser's).

import assert from "node:assert/strict";
import { test } from "node:test";

import * as asn1js from "asn1js";

import { b64decode, b64encode, equalBytes, fromHex, fromUtf8, toHex, utf8 } from "../src/crypto/bytes.js";
import { generateSigningKey, sign, verify } from "../src/crypto/signing.js";
import { generateEncryptionKey, oaepDecrypt, oaepEncrypt } from "../src/crypto/wrapping.js";
import {
  BACKUP_ITERATIONS,
  BACKUP_MAX_BYTES,
  BackupError,
  decryptBackup,
  encryptBackup,
  parseBackup,
  uploadBackup,
} from "../src/keys/backup.js";

const PASSPHRASE = "a backup passphrase, long enough";

async function keyPair(algorithm = "ed25519", options = {}) {
  const signing = await generateSigningKey(algorithm, options);
  const encryption = await generateEncryptionKey(2048); // the backup does not care; 2048 is faster
  return {
    signing: { ...signing, serial: "1a2b" },
    encryption: { ...encryption, serial: "3c4d" },
  };
}

// Made once: PBKDF2 at 600,000 iterations costs a fraction of a second per call.
const ed25519Keys = keyPair("ed25519");
const ed25519Blob = ed25519Keys.then((keys) =>
  encryptBackup(keys, PASSPHRASE, { protector: "passphrase", username: "alice" }),
);

async function assertSameWorkingKeys(restored, original) {
  assert.equal(restored.signing.algorithm, original.signing.algorithm);
  assert.ok(equalBytes(restored.signing.spki, original.signing.spki));
  assert.ok(equalBytes(restored.encryption.spki, original.encryption.spki));
  assert.equal(restored.signing.serial, original.signing.serial);
  assert.equal(restored.encryption.serial, original.encryption.serial);
  // The restored private keys are the originals: they sign for, and open what is
  // encrypted to, the original public keys.
  const data = utf8("signed after a restore");
  await verify(original.signing.spki, await sign(restored.signing, data), data);
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const wrapped = await oaepEncrypt(original.encryption.spki, secret);
  assert.ok(equalBytes(await oaepDecrypt(restored.encryption.privateKey, wrapped), secret));
}

// {p, q, g} as the server publishes them (lowercase hex, no leading zeros), read from a
// DSA SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID, Dss-Parms {p, q, g} }, BIT STRING }.
function dsaParametersFromSpki(der) {
  const { result } = asn1js.fromBER(der);
  const [p, q, g] = result.valueBlock.value[0].valueBlock.value[1].valueBlock.value;
  const hex = (integer) => BigInt(`0x${toHex(integer.valueBlock.valueHexView)}`).toString(16);
  return { p: hex(p), q: hex(q), g: hex(g) };
}

function mutate(blob, change) {
  const fields = JSON.parse(fromUtf8(blob));
  change(fields);
  return utf8(JSON.stringify(fields));
}

test("the blob is the documented JSON: v1, PBKDF2-SHA256 at 600,000 iterations, 16-byte salt, 12-byte IV", async () => {
  const blob = await ed25519Blob;
  const fields = JSON.parse(fromUtf8(blob));
  assert.deepEqual(Object.keys(fields).sort(), ["ciphertext", "iterations", "iv", "kdf", "protector", "salt", "v"]);
  assert.equal(fields.v, 1);
  assert.equal(fields.kdf, "pbkdf2-sha256");
  assert.equal(fields.iterations, 600_000);
  assert.equal(BACKUP_ITERATIONS, 600_000);
  assert.equal(fields.protector, "passphrase");
  assert.equal(b64decode(fields.salt).length, 16);
  assert.equal(b64decode(fields.iv).length, 12);
  assert.ok(blob.length < BACKUP_MAX_BYTES);
  // Nothing of the keys is readable outside the ciphertext.
  const keys = await ed25519Keys;
  assert.ok(!fromUtf8(blob).includes(b64encode(keys.signing.spki)));
});

test("two backups of the same keys use different salts and IVs", async () => {
  const keys = await ed25519Keys;
  const again = await encryptBackup(keys, PASSPHRASE, { protector: "passphrase", username: "alice" });
  const one = parseBackup(await ed25519Blob);
  const two = parseBackup(again);
  assert.ok(!equalBytes(one.salt, two.salt));
  assert.ok(!equalBytes(one.iv, two.iv));
});

test("an Ed25519 + RSA pair round-trips through the backup", async () => {
  const restored = await decryptBackup(await ed25519Blob, PASSPHRASE, "alice");
  assert.equal(restored.protector, "passphrase");
  await assertSameWorkingKeys(restored, await ed25519Keys);
});

test("an ECDSA P-256 + RSA pair with the login-password protector round-trips", async () => {
  const keys = await keyPair("ecdsa-p256");
  const blob = await encryptBackup(keys, "the login password", { protector: "login-password", username: "bob" });
  assert.equal(parseBackup(blob).protector, "login-password");
  await assertSameWorkingKeys(await decryptBackup(blob, "the login password", "bob"), keys);
});

test("a DSA + RSA pair round-trips (the DSA key as its hex parameters and x)", async () => {
  // The vectors' DSA SPKI carries real 2048/256 parameters; any valid p, q, g do here.
  const { readFile } = await import("node:fs/promises");
  const vectors = JSON.parse(await readFile(new URL("../../cryptokit/vectors/signatures.json", import.meta.url)));
  const dsaSpki = vectors.keys.find((key) => key.algorithm === "dsa").spki;
  const keys = await keyPair("dsa", { dsaParameters: dsaParametersFromSpki(fromHex(dsaSpki)) });
  const blob = await encryptBackup(keys, PASSPHRASE, { protector: "passphrase", username: "dave" });
  const restored = await decryptBackup(blob, PASSPHRASE, "dave");
  await assertSameWorkingKeys(restored, keys);
});

test("a wrong passphrase is refused with backup_passphrase_wrong, not a crash", async () => {
  await assert.rejects(decryptBackup(await ed25519Blob, "not the passphrase", "alice"), (error) => {
    assert.ok(error instanceof BackupError);
    assert.equal(error.code, "backup_passphrase_wrong");
    assert.ok(!error.message.includes("not the passphrase"));
    return true;
  });
  await assert.rejects(decryptBackup(await ed25519Blob, "", "alice"), { code: "backup_passphrase_wrong" });
});

test("the passphrase is compared after Unicode NFC normalisation", async () => {
  const keys = await ed25519Keys;
  const composed = "caf\u00e9 au lait, please";
  const decomposed = "cafe\u0301 au lait, please";
  const blob = await encryptBackup(keys, composed, { protector: "passphrase", username: "alice" });
  await assertSameWorkingKeys(await decryptBackup(blob, decomposed, "alice"), keys);
});

test("a tampered ciphertext, IV or salt is refused", async () => {
  const blob = await ed25519Blob;
  const flip = (name) =>
    mutate(blob, (fields) => {
      const bytes = b64decode(fields[name]);
      bytes[bytes.length - 1] ^= 1;
      fields[name] = b64encode(bytes);
    });
  for (const name of ["ciphertext", "iv", "salt"]) {
    await assert.rejects(decryptBackup(flip(name), PASSPHRASE, "alice"), { code: "backup_passphrase_wrong" }, name);
  }
});

test("a blob made for one user is refused for another (the username is bound in)", async () => {
  await assert.rejects(decryptBackup(await ed25519Blob, PASSPHRASE, "mallory"), { code: "backup_passphrase_wrong" });
  await assert.rejects(decryptBackup(await ed25519Blob, PASSPHRASE, "alice2"), { code: "backup_passphrase_wrong" });
});

test("malformed blobs are backup_invalid", async () => {
  const blob = await ed25519Blob;
  const cases = {
    "not JSON": utf8("{not json"),
    "not UTF-8": new Uint8Array([0xff, 0xfe, 0x7b]),
    "an array": utf8("[]"),
    "version 2": mutate(blob, (fields) => (fields.v = 2)),
    "another KDF": mutate(blob, (fields) => (fields.kdf = "argon2id")),
    "too few iterations": mutate(blob, (fields) => (fields.iterations = 1000)),
    "absurd iterations": mutate(blob, (fields) => (fields.iterations = 2 ** 40)),
    "unknown protector": mutate(blob, (fields) => (fields.protector = "pin")),
    "short salt": mutate(blob, (fields) => (fields.salt = b64encode(new Uint8Array(8)))),
    "long IV": mutate(blob, (fields) => (fields.iv = b64encode(new Uint8Array(16)))),
    "bad base64": mutate(blob, (fields) => (fields.ciphertext = "!!!")),
    "missing ciphertext": mutate(blob, (fields) => delete fields.ciphertext),
  };
  for (const [name, bad] of Object.entries(cases)) {
    await assert.rejects(decryptBackup(bad, PASSPHRASE, "alice"), { code: "backup_invalid" }, name);
  }
});

test("an unknown protector is refused when making a backup", async () => {
  await assert.rejects(
    encryptBackup(await ed25519Keys, PASSPHRASE, { protector: "nothing", username: "alice" }),
    { code: "backup_protector" },
  );
});

test("a blob over 64 KiB is refused before anything is sent", async () => {
  const sent = [];
  const http = { getJson: async (path) => sent.push(path), putJson: async (path) => sent.push(path) };
  await assert.rejects(uploadBackup(http, new Uint8Array(BACKUP_MAX_BYTES + 1)), { code: "backup_size" });
  assert.deepEqual(sent, []);
});
