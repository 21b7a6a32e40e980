// Fingerprints and safety numbers against cryptokit/vectors/safety_numbers.json.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { fromHex } from "../src/crypto/bytes.js";
import { fingerprint, safetyNumber } from "../src/crypto/fingerprints.js";

const VECTORS = JSON.parse(readFileSync(new URL("../../cryptokit/vectors/safety_numbers.json", import.meta.url), "utf8"));

test("the vectors hold fingerprints and safety numbers", () => {
  assert.ok(VECTORS.fingerprints.length >= 4);
  assert.ok(VECTORS.safety_numbers.length >= 6);
});

VECTORS.fingerprints.forEach((vector, index) => {
  test(`fingerprint ${index} matches Python`, async () => {
    assert.equal(await fingerprint(fromHex(vector.spki)), vector.fingerprint);
  });
});

for (const vector of VECTORS.safety_numbers) {
  test(`safety number matches Python: ${vector.name}`, async () => {
    const number = await safetyNumber(vector.user_a, fromHex(vector.spki_a), vector.user_b, fromHex(vector.spki_b));
    assert.equal(number, vector.number);
    assert.match(number, /^\d{5}( \d{5}){5}$/);
  });
}

test("both users compute the same safety number, and a key change changes it", async () => {
  const [a, b, c] = VECTORS.fingerprints.map((f) => fromHex(f.spki));
  const ab = await safetyNumber("alice", a, "bob", b);
  assert.equal(await safetyNumber("bob", b, "alice", a), ab);
  assert.notEqual(await safetyNumber("alice", a, "bob", c), ab);
});
