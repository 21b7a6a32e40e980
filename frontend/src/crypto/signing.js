// Signatures with one dispatch by algorithm; the port of cryptokit/signing.py. Wire
// formats (protocol.md §3.1), fixed by cryptokit/vectors/signatures.json:
//
// * ed25519: raw 64 bytes;
// * ecdsa-p256: SHA-256, raw r||s (64 bytes, IEEE P1363: what WebCrypto makes);
// * rsa-pss: SHA-256, MGF1-SHA256, salt length 32;
// * dsa: SHA-256, DER SEQUENCE {r, s} (jsrsasign, loaded lazily from ./dsa.js).
//
// A key object is {algorithm, privateKey, spki}: privateKey is a CryptoKey, or for DSA a
// plain object {x, p, q, g} of hex strings (WebCrypto has no DSA). DSA code is reached
// only through `await import("./dsa.js")` so jsrsasign stays out of the main bundle.

import "reflect-metadata"; // @peculiar/x509 (through tsyringe) needs the Reflect metadata API
import { PublicKey } from "@peculiar/x509";

import { asBytes, b64decode, b64encode, equalBytes } from "./bytes.js";
import { CryptoError } from "./errors.js";

export const SIGNING_ALGORITHMS = Object.freeze(["ed25519", "ecdsa-p256", "rsa-pss", "dsa"]);

const OID_ED25519 = "1.3.101.112";
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_RSA = "1.2.840.113549.1.1.1";
const OID_DSA = "1.2.840.10040.4.1";
// DER of the namedCurve OID prime256v1 (1.2.840.10045.3.1.7), the EC key's parameters.
const P256_PARAMETERS = new Uint8Array([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
const RSA_EXPONENT = new Uint8Array([1, 0, 1]);
const PSS_SALT_BYTES = 32;
const P256_SIGNATURE_BYTES = 64;

// How each WebCrypto algorithm is imported and used. `importParams` names the key,
// `signParams` the operation.
const WEBCRYPTO = {
  ed25519: { importParams: { name: "Ed25519" }, signParams: { name: "Ed25519" } },
  "ecdsa-p256": {
    importParams: { name: "ECDSA", namedCurve: "P-256" },
    signParams: { name: "ECDSA", hash: "SHA-256" },
  },
  "rsa-pss": {
    importParams: { name: "RSA-PSS", hash: "SHA-256" },
    signParams: { name: "RSA-PSS", saltLength: PSS_SALT_BYTES },
  },
};

const subtle = () => globalThis.crypto.subtle;

/** The lazily loaded DSA module (its own bundle chunk, with jsrsasign). */
function loadDsa() {
  return import("./dsa.js");
}

/**
 * The signing algorithm of a SubjectPublicKeyInfo, from its algorithm OID (and, for EC,
 * its curve). The SPKI comes from a certificate or the wire; the algorithm is never
 * taken from anywhere else, so a key cannot be used with another algorithm's rules.
 * @param {Uint8Array} spki DER
 * @returns {"ed25519"|"ecdsa-p256"|"rsa-pss"|"dsa"}
 * @throws {CryptoError} `malformed_key` (not an SPKI) or `unsupported_key`
 */
export function signingAlgorithmOf(spki) {
  let info;
  try {
    info = new PublicKey(asBytes(spki)).asn.algorithm;
  } catch {
    throw new CryptoError("malformed_key", "The key is not a valid SubjectPublicKeyInfo.");
  }
  switch (info.algorithm) {
    case OID_ED25519:
      return "ed25519";
    case OID_EC_PUBLIC_KEY:
      if (info.parameters && equalBytes(new Uint8Array(info.parameters), P256_PARAMETERS)) return "ecdsa-p256";
      throw new CryptoError("unsupported_key", "Only the P-256 curve is accepted for ECDSA.");
    case OID_RSA:
      return "rsa-pss";
    case OID_DSA:
      return "dsa";
    default:
      throw new CryptoError("unsupported_key", "Signing keys: Ed25519, ECDSA P-256, RSA-PSS or DSA.");
  }
}

function checkAlgorithm(algorithm) {
  if (!SIGNING_ALGORITHMS.includes(algorithm)) {
    throw new CryptoError("unsupported_key", `Unknown signing algorithm; expected one of ${SIGNING_ALGORITHMS.join(", ")}.`);
  }
}

/**
 * A new signing key. The private CryptoKey is extractable so the key backup can export
 * it; import it again with importSigningKey(…, {extractable: false}) for daily use.
 * @param {"ed25519"|"ecdsa-p256"|"rsa-pss"|"dsa"} algorithm
 * @param {{dsaParameters?: {p: string, q: string, g: string}, rsaBits?: number}} [options]
 *   dsaParameters: the server's published parameters (hex), required for DSA
 * @returns {Promise<{algorithm: string, privateKey: CryptoKey|{x: string, p: string, q: string, g: string}, spki: Uint8Array}>}
 * @throws {CryptoError} `unsupported_key`
 */
export async function generateSigningKey(algorithm, { dsaParameters, rsaBits = 3072 } = {}) {
  checkAlgorithm(algorithm);
  if (algorithm === "dsa") {
    if (!dsaParameters) throw new CryptoError("unsupported_key", "DSA keys need the server's DSA parameters.");
    const dsa = await loadDsa();
    const privateKey = dsa.generateKey(dsaParameters);
    return { algorithm, privateKey, spki: dsa.spkiOf(privateKey) };
  }
  const params =
    algorithm === "rsa-pss"
      ? { ...WEBCRYPTO[algorithm].importParams, modulusLength: rsaBits, publicExponent: RSA_EXPONENT }
      : WEBCRYPTO[algorithm].importParams;
  const pair = await subtle().generateKey(params, true, ["sign", "verify"]);
  const spki = new Uint8Array(await subtle().exportKey("spki", pair.publicKey));
  return { algorithm, privateKey: pair.privateKey, spki };
}

/**
 * Sign `data` in the wire format of the key's algorithm.
 * @param {{algorithm: string, privateKey: CryptoKey|object}} key
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export async function sign(key, data) {
  checkAlgorithm(key?.algorithm);
  if (key.algorithm === "dsa") return (await loadDsa()).sign(key.privateKey, data);
  return new Uint8Array(await subtle().sign(WEBCRYPTO[key.algorithm].signParams, key.privateKey, asBytes(data)));
}

async function importPublic(algorithm, spki) {
  const key = await subtle().importKey("spki", spki, WEBCRYPTO[algorithm].importParams, true, ["verify"]);
  // Python accepts only the canonical DER of a key (one key, one byte string: the
  // fingerprint and pins cannot be dodged); a re-export that differs is refused alike.
  if (!equalBytes(new Uint8Array(await subtle().exportKey("spki", key)), spki)) {
    throw new CryptoError("malformed_key", "The key is not in canonical DER form.");
  }
  return key;
}

/**
 * Resolve if `signature` over `data` verifies for the key in `spki` (the algorithm comes
 * from the SPKI), else throw. Every failure, an unusable key included, is the same
 * `bad_signature`: a signature that cannot be checked is as worthless as a forged one.
 * @param {Uint8Array} spki DER
 * @param {Uint8Array} signature
 * @param {Uint8Array} data
 * @returns {Promise<void>}
 * @throws {CryptoError} `bad_signature`
 */
export async function verify(spki, signature, data) {
  let ok = false;
  try {
    const keyBytes = asBytes(spki);
    const sig = asBytes(signature);
    const message = asBytes(data);
    const algorithm = signingAlgorithmOf(keyBytes);
    if (algorithm === "dsa") {
      ok = (await loadDsa()).verify(keyBytes, sig, message);
    } else if (algorithm !== "ecdsa-p256" || sig.length === P256_SIGNATURE_BYTES) {
      // ECDSA must be raw r||s; WebCrypto would refuse DER anyway, the length says why.
      const key = await importPublic(algorithm, keyBytes);
      ok = await subtle().verify(WEBCRYPTO[algorithm].signParams, key, sig, message);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw new CryptoError("bad_signature", "The signature does not verify.");
}

/**
 * A JSON-safe copy of a private signing key, for the encrypted key backup: {algorithm,
 * pkcs8: base64} (the CryptoKey must be extractable) or {algorithm: "dsa", x, p, q, g}.
 * @param {{algorithm: string, privateKey: CryptoKey|object}} key
 * @returns {Promise<object>}
 */
export async function exportSigningKey(key) {
  checkAlgorithm(key?.algorithm);
  if (key.algorithm === "dsa") {
    const { x, p, q, g } = key.privateKey;
    return { algorithm: "dsa", x, p, q, g };
  }
  const pkcs8 = new Uint8Array(await subtle().exportKey("pkcs8", key.privateKey));
  return { algorithm: key.algorithm, pkcs8: b64encode(pkcs8) };
}

/** The public SPKI of a PKCS#8 private key, through its JWK with the private fields dropped. */
async function publicSpkiOf(algorithm, pkcs8) {
  const params = WEBCRYPTO[algorithm].importParams;
  const temporary = await subtle().importKey("pkcs8", pkcs8, params, true, ["sign"]);
  const jwk = await subtle().exportKey("jwk", temporary);
  const { kty, crv, x, y, n, e } = jwk;
  const publicJwk = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
  const publicKey = await subtle().importKey("jwk", publicJwk, params, true, ["verify"]);
  return new Uint8Array(await subtle().exportKey("spki", publicKey));
}

/**
 * The key object of an exported signing key (exportSigningKey's output), with its SPKI.
 * The CryptoKey is non-extractable unless asked: a script that gets hold of it can sign
 * while the page is open, but cannot carry the key away.
 * @param {object} exported
 * @param {{extractable?: boolean}} [options]
 * @returns {Promise<{algorithm: string, privateKey: CryptoKey|object, spki: Uint8Array}>}
 * @throws {CryptoError} `malformed_key` / `unsupported_key`
 */
export async function importSigningKey(exported, { extractable = false } = {}) {
  checkAlgorithm(exported?.algorithm);
  const { algorithm } = exported;
  if (algorithm === "dsa") {
    const dsa = await loadDsa();
    const { x, p, q, g } = exported;
    const privateKey = { x, p, q, g };
    return { algorithm, privateKey, spki: dsa.spkiOf(privateKey) };
  }
  try {
    const pkcs8 = b64decode(exported.pkcs8);
    const spki = await publicSpkiOf(algorithm, pkcs8);
    const privateKey = await subtle().importKey("pkcs8", pkcs8, WEBCRYPTO[algorithm].importParams, extractable, ["sign"]);
    return { algorithm, privateKey, spki };
  } catch {
    throw new CryptoError("malformed_key", `The exported ${algorithm} key cannot be imported.`);
  }
}
