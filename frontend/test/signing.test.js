// Signatures: every Python-made case of cryptokit/vectors/signatures.json verifies (or is
// refused) in JS; JS-made signatures of all four algorithms verify in JS; keys survive
// export and import; DSA keys made from Python's numbers have Python's exact SPKI.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { b64decode, equalBytes, fromHex, utf8 } from "../src/crypto/bytes.js";
import { CryptoError } from "../src/crypto/errors.js";
import {
  SIGNING_ALGORITHMS,
  exportSigningKey,
  generateSigningKey,
  importSigningKey,
  sign,
  signingAlgorithmOf,
  verify,
} from "../src/crypto/signing.js";

const VECTORS = JSON.parse(readFileSync(new URL("../../cryptokit/vectors/signatures.json", import.meta.url), "utf8"));
const FIXTURES = JSON.parse(readFileSync(new URL("./fixtures/python_fixtures.json", import.meta.url), "utf8"));
const DSA_PARAMETERS = FIXTURES.dsa.parameters;

const isBadSignature = (error) => error instanceof CryptoError && error.code === "bad_signature";

test("the signature vectors hold every algorithm", () => {
  assert.deepEqual(VECTORS.keys.map((k) => k.algorithm).sort(), [...SIGNING_ALGORITHMS].sort());
});

for (const key of VECTORS.keys) {
  const spki = fromHex(key.spki);
  test(`${key.algorithm}: the SPKI names its algorithm`, () => {
    assert.equal(signingAlgorithmOf(spki), key.algorithm);
  });
  key.cases.forEach((vector, index) => {
    const label = vector.note ?? `valid case ${index}`;
    test(`${key.algorithm}: Python vector "${label}" ${vector.valid ? "verifies" : "is refused"}`, async () => {
      const check = verify(spki, fromHex(vector.signature), fromHex(vector.message));
      if (vector.valid) await check;
      else await assert.rejects(check, isBadSignature);
    });
  });
}

const made = new Map();
async function keyFor(algorithm) {
  if (!made.has(algorithm)) {
    made.set(algorithm, await generateSigningKey(algorithm, { dsaParameters: DSA_PARAMETERS, rsaBits: 2048 }));
  }
  return made.get(algorithm);
}

for (const algorithm of SIGNING_ALGORITHMS) {
  test(`${algorithm}: a JS signature verifies, and fails on another message or a flipped byte`, async () => {
    const key = await keyFor(algorithm);
    assert.equal(signingAlgorithmOf(key.spki), algorithm);
    const data = utf8(`signed by a JS ${algorithm} key`);
    const signature = await sign(key, data);
    await verify(key.spki, signature, data);
    await assert.rejects(verify(key.spki, signature, utf8("something else")), isBadSignature);
    const flipped = signature.slice();
    flipped[flipped.length - 1] ^= 1;
    await assert.rejects(verify(key.spki, flipped, data), isBadSignature);
  });

  test(`${algorithm}: a signature does not verify under another algorithm's key`, async () => {
    const other = await keyFor(algorithm === "ed25519" ? "ecdsa-p256" : "ed25519");
    const key = await keyFor(algorithm);
    const data = utf8("cross-algorithm");
    await assert.rejects(verify(other.spki, await sign(key, data), data), isBadSignature);
  });

  test(`${algorithm}: export and import keep the key, non-extractable by default`, async () => {
    const key = await keyFor(algorithm);
    const exported = await exportSigningKey(key);
    const text = JSON.stringify(exported);
    const imported = await importSigningKey(JSON.parse(text));
    assert.equal(imported.algorithm, algorithm);
    assert.ok(equalBytes(imported.spki, key.spki), "the SPKI is derived again from the private key");
    const data = utf8("after a backup round trip");
    await verify(key.spki, await sign(imported, data), data);
    if (algorithm !== "dsa") {
      assert.equal(imported.privateKey.extractable, false);
      await assert.rejects(exportSigningKey(imported));
      const extractable = await importSigningKey(exported, { extractable: true });
      assert.equal(extractable.privateKey.extractable, true);
    }
  });
}

test("ecdsa-p256: the wire signature is raw r||s of 64 bytes, not DER", async () => {
  const key = await keyFor("ecdsa-p256");
  assert.equal((await sign(key, utf8("x"))).length, 64);
});

test("rsa-pss: a signature is as long as the modulus", async () => {
  const key = await keyFor("rsa-pss");
  assert.equal((await sign(key, utf8("x"))).length, 256);
});

test("dsa: the wire signature is DER, and trailing bytes after it are refused", async () => {
  const key = await keyFor("dsa");
  const data = utf8("der");
  const signature = await sign(key, data);
  assert.equal(signature[0], 0x30);
  assert.equal(signature[1], signature.length - 2);
  await assert.rejects(verify(key.spki, Uint8Array.from([...signature, 0]), data), isBadSignature);
});

test("dsa: a key from Python's numbers has Python's SPKI byte for byte", async () => {
  const { x, parameters, spki } = FIXTURES.dsa;
  const key = await importSigningKey({ algorithm: "dsa", x, ...parameters });
  assert.ok(equalBytes(key.spki, b64decode(spki)));
});

test("dsa: a private key is uniform in [1, q-1] and differs each time", async () => {
  const q = BigInt(`0x${DSA_PARAMETERS.q}`);
  const xs = new Set();
  for (let i = 0; i < 5; i += 1) {
    const key = await generateSigningKey("dsa", { dsaParameters: DSA_PARAMETERS });
    const x = BigInt(`0x${key.privateKey.x}`);
    assert.ok(x >= 1n && x < q);
    xs.add(x);
  }
  assert.equal(xs.size, 5);
});

test("dsa: parameters that are not 2048/256 or inconsistent are refused", async () => {
  await assert.rejects(generateSigningKey("dsa", {}), (e) => e.code === "unsupported_key");
  await assert.rejects(
    generateSigningKey("dsa", { dsaParameters: { ...DSA_PARAMETERS, q: "ff" } }),
    (e) => e.code === "unsupported_key",
  );
  await assert.rejects(
    generateSigningKey("dsa", { dsaParameters: { ...DSA_PARAMETERS, g: "2" } }),
    (e) => e.code === "malformed_key",
  );
});

for (const [algorithm, { pkcs8, spki }] of Object.entries(FIXTURES.signing_pkcs8)) {
  test(`${algorithm}: a Python PKCS#8 key imports with Python's SPKI and signs for Python's key`, async () => {
    const key = await importSigningKey({ algorithm, pkcs8 });
    assert.ok(equalBytes(key.spki, b64decode(spki)));
    const data = utf8("python key, JS signature");
    await verify(b64decode(spki), await sign(key, data), data);
  });
}

test("an SPKI that is not canonical DER is refused like Python's load_public_key", async () => {
  const key = await keyFor("ecdsa-p256");
  const data = utf8("canonical");
  const signature = await sign(key, data);
  // The same P-256 point in compressed form: the same key, another byte string.
  const raw = key.spki.slice(-65);
  const prefix = key.spki.slice(0, key.spki.length - 65);
  const compressed = Uint8Array.from([...prefix.slice(0, -3), 0x03, 0x22, 0x00, 2 + (raw[64] & 1), ...raw.slice(1, 33)]);
  compressed[1] = compressed.length - 2;
  await assert.rejects(verify(compressed, signature, data), isBadSignature);
});

test("unknown algorithms and garbage keys are refused with their codes", async () => {
  await assert.rejects(generateSigningKey("rsa-pkcs1"), (e) => e.code === "unsupported_key");
  assert.throws(() => signingAlgorithmOf(utf8("not a key")), (e) => e.code === "malformed_key");
  const rsaOaep = b64decode(FIXTURES.certificates.alice_encryption.spki);
  assert.equal(signingAlgorithmOf(rsaOaep), "rsa-pss"); // an RSA key is an RSA key; policy is the certificate's
  await assert.rejects(verify(utf8("not a key"), new Uint8Array(64), utf8("x")), isBadSignature);
  await assert.rejects(importSigningKey({ algorithm: "ed25519", pkcs8: "AAAA" }), (e) => e.code === "malformed_key");
});
