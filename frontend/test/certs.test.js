// verifyCertificate against certificates Python made (fixtures/make_python_fixtures.py):
// the profile's certificates are accepted, and each of protocol.md §2.2 points 1-6
// refuses its broken certificate with the Python client's code.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { b64decode, equalBytes, utf8 } from "../src/crypto/bytes.js";
import { SERVER_NAME, parseCertificate, verifyCertificate } from "../src/crypto/certs.js";
import { CryptoError } from "../src/crypto/errors.js";

const FIXTURES = JSON.parse(readFileSync(new URL("./fixtures/python_fixtures.json", import.meta.url), "utf8"));
const CA = Object.fromEntries(Object.entries(FIXTURES.authorities).map(([name, der]) => [name, b64decode(der)]));
const CERTS = FIXTURES.certificates;
const AUTHORITIES = [CA.current, CA.previous];

const der = (name) => b64decode(CERTS[name].der);
const check = (name, options = {}) =>
  verifyCertificate(der(name), {
    authorities: AUTHORITIES,
    username: "alice",
    kind: "signing",
    serial: CERTS[name].serial,
    ...options,
  });
const untrusted = (error) => error instanceof CryptoError && error.code === "untrusted_certificate";

test("a signing certificate in the profile is accepted and parsed", async () => {
  const parsed = await check("alice_signing");
  assert.equal(parsed.serial, CERTS.alice_signing.serial);
  assert.equal(parsed.commonName, "alice");
  assert.ok(equalBytes(parsed.spki, b64decode(CERTS.alice_signing.spki)));
  assert.deepEqual(parsed.keyUsage, { digitalSignature: true, keyEncipherment: false, keyCertSign: false });
  assert.equal(parsed.isCA, false);
  assert.ok(parsed.notBefore instanceof Date && parsed.notAfter > parsed.notBefore);
  assert.match(parsed.signatureAlgorithm, /ECDSA/);
  assert.ok(parsed.issuer.includes("SecureChat CA current"));
});

test("an encryption certificate is accepted for encryption only", async () => {
  await check("alice_encryption", { kind: "encryption" });
  await assert.rejects(check("alice_encryption", { kind: "signing" }), untrusted);
  await assert.rejects(check("alice_signing", { kind: "encryption" }), untrusted);
});

test("the server signing certificate is accepted as server-signing and as the server's signing key", async () => {
  const parsed = await check("server_signing", { kind: "server-signing", username: null });
  assert.equal(parsed.commonName, SERVER_NAME);
  await check("server_signing", { kind: "signing", username: SERVER_NAME });
  await assert.rejects(check("server_signing", { kind: "server-signing", username: "alice" }), untrusted);
  await assert.rejects(check("alice_signing", { kind: "server-signing", username: null }), untrusted);
});

test("point 1: a previous CA generation still verifies what it issued", async () => {
  await check("alice_signing_old_ca");
  await assert.rejects(check("alice_signing_old_ca", { authorities: [CA.current] }), untrusted);
});

test("point 1: a certificate from another CA is refused, even naming our CA as issuer", async () => {
  await assert.rejects(check("foreign"), untrusted);
  await assert.rejects(check("forged_issuer"), untrusted);
  await assert.rejects(check("alice_signing", { authorities: [] }), untrusted);
  await assert.rejects(check("alice_signing", { authorities: [CA.foreign, utf8("garbage")] }), untrusted);
});

test("point 2: the serial must be the one it was fetched by, in lowercase hex", async () => {
  assert.equal((await check("small_serial")).serial, "2a");
  const high = await check("high_bit_serial");
  assert.match(high.serial, /^8[0-9a-f]{37}$/); // no leading zero from the DER sign byte
  await assert.rejects(check("alice_signing", { serial: CERTS.alice_encryption.serial }), untrusted);
  await assert.rejects(check("small_serial", { serial: "002a" }), untrusted);
  await assert.rejects(check("small_serial", { serial: "2A" }), untrusted);
});

test("point 3: key usage must hold the role's usage, and a signing key may not encipher", async () => {
  await assert.rejects(check("both_usages"), untrusted);
  await check("both_usages", { kind: "encryption" }); // as trust.py: only signing excludes the other usage
  await assert.rejects(check("no_key_usage"), untrusted);
  assert.equal(parseCertificate(der("no_key_usage")).keyUsage, null);
});

test("point 4: exactly one common name, equal to the username", async () => {
  await assert.rejects(check("alice_signing", { username: "bob" }), untrusted);
  await assert.rejects(check("two_common_names"), untrusted);
  assert.equal(parseCertificate(der("two_common_names")).commonName, null);
  await check("bob_signing", { username: "bob" });
});

test("point 5: valid at the stored time, which is clamped to now", async () => {
  await assert.rejects(check("expired"), untrusted);
  await check("expired", { at: new Date("2020-06-01T00:00:00Z") }); // history signed while valid
  await assert.rejects(check("expired", { at: new Date("2019-06-01T00:00:00Z") }), untrusted);
  await assert.rejects(check("expired", { at: new Date("2022-06-01T00:00:00Z") }), untrusted);
  // A claimed time in the future is now: a certificate not yet valid stays refused.
  await assert.rejects(check("not_yet_valid", { at: new Date("2100-06-01T00:00:00Z") }), untrusted);
  await assert.rejects(check("not_yet_valid"), untrusted);
});

test("point 6: a revoked serial is certificate_revoked", async () => {
  await assert.rejects(
    check("alice_signing", { revoked: new Set([CERTS.alice_signing.serial]) }),
    (error) => error instanceof CryptoError && error.code === "certificate_revoked",
  );
  await check("alice_signing", { revoked: new Set([CERTS.alice_encryption.serial]) });
});

test("garbage and unknown kinds are untrusted", async () => {
  await assert.rejects(
    verifyCertificate(utf8("not a certificate"), { authorities: AUTHORITIES, username: "alice", kind: "signing" }),
    untrusted,
  );
  assert.throws(() => parseCertificate(utf8("nope")), untrusted);
  await assert.rejects(check("alice_signing", { kind: "ca" }), untrusted);
});

test("a CA certificate parses as a CA that signs certificates", () => {
  const ca = parseCertificate(CA.current);
  assert.equal(ca.isCA, true);
  assert.equal(ca.keyUsage.keyCertSign, true);
  assert.equal(ca.commonName, "SecureChat CA current");
});
