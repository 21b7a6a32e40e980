// DSA (SHA-256, FIPS 186-4 with a 256-bit q) with jsrsasign, because WebCrypto has no
// DSA. This module is only ever reached through `await import("./dsa.js")` from
// signing.js, so the bundler puts jsrsasign (a few hundred KiB) in a chunk that loads
// only for users who picked DSA or when a DSA signature must be checked.
//
// Wire format (protocol.md §3.1): a DER SEQUENCE { INTEGER r, INTEGER s }, as OpenSSL and
// jsrsasign make. Keys are plain objects of lowercase hex strings {x, p, q, g}: jsrsasign
// keys are not CryptoKeys, so they cannot be made non-extractable anyway.

import jsrsasign from "jsrsasign";

import { CryptoError } from "./errors.js";
import { asBytes, fromHex, randomBytes, toHex } from "./bytes.js";

const { KJUR, KEYUTIL, BigInteger, pemtohex } = jsrsasign;
const ALGORITHM = "SHA256withDSA";
// FIPS 186-4 (L, N) pairs with a 256-bit q, as cryptokit/keys.py accepts them.
const SIZES = new Set(["2048/256", "3072/256"]);

// jsrsasign's own SecureRandom is RC4 keyed from a 256-byte seed. DSA's per-signature
// nonce k must be uniform (a biased k leaks the private key over enough signatures), so
// every random number jsrsasign draws here comes straight from the platform CSPRNG.
KJUR.crypto.Util.SECURERANDOMGEN = {
  nextBytes(array) {
    const bytes = randomBytes(array.length);
    for (let i = 0; i < array.length; i += 1) array[i] = bytes[i];
  },
};

function big(hex, what) {
  if (typeof hex !== "string" || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new CryptoError("malformed_key", `The DSA ${what} is not a hex number.`);
  }
  return new BigInteger(hex, 16);
}

/**
 * Check published domain parameters the way cryptokit/keys.py checks a DSA key: sizes
 * (2048 or 3072)/256, q divides p - 1, g in (1, p) of order q. Primality is not tested
 * (neither does Python); the CA publishes the parameters and certifies the keys.
 */
function domain({ p, q, g }) {
  const [P, Q, G] = [big(p, "p"), big(q, "q"), big(g, "g")];
  if (!SIZES.has(`${P.bitLength()}/${Q.bitLength()}`)) {
    throw new CryptoError("unsupported_key", "DSA parameters must be 2048 or 3072 bits with a 256-bit q.");
  }
  const one = BigInteger.ONE;
  if (
    P.subtract(one).mod(Q).signum() !== 0 ||
    G.compareTo(one) <= 0 ||
    G.compareTo(P) >= 0 ||
    !G.modPow(Q, P).equals(one)
  ) {
    throw new CryptoError("malformed_key", "The DSA parameters are inconsistent.");
  }
  return { P, Q, G };
}

/** A uniform integer in [1, q - 1] by rejection sampling on the bit length of q. */
function randomBelow(Q) {
  const bits = Q.bitLength();
  const bytes = Math.ceil(bits / 8);
  const mask = 0xff >> (bytes * 8 - bits);
  for (;;) {
    const raw = randomBytes(bytes);
    raw[0] &= mask;
    const x = new BigInteger(toHex(raw), 16);
    if (x.signum() > 0 && x.compareTo(Q) < 0) return x;
  }
}

function privateKeyObject({ x, p, q, g }) {
  const { P, Q, G } = domain({ p, q, g });
  const X = big(x, "private key");
  if (X.signum() <= 0 || X.compareTo(Q) >= 0) throw new CryptoError("malformed_key", "The DSA private key is out of range.");
  const key = new KJUR.crypto.DSA();
  key.setPrivate(P, Q, G, G.modPow(X, P), X);
  return key;
}

/**
 * A new DSA private key for the server's published parameters (GET /api/keys/ca/
 * `dsa_parameters`): x uniform in [1, q - 1] from crypto.getRandomValues.
 * @param {{p: string, q: string, g: string}} parameters hex
 * @returns {{x: string, p: string, q: string, g: string}} lowercase hex
 * @throws {CryptoError} `unsupported_key` / `malformed_key` for unusable parameters
 */
export function generateKey(parameters) {
  const { P, Q, G } = domain(parameters ?? {});
  const x = randomBelow(Q);
  return { x: x.toString(16), p: P.toString(16), q: Q.toString(16), g: G.toString(16) };
}

/**
 * The SubjectPublicKeyInfo DER of a private key's public half (y = g^x mod p), the
 * standard encoding OpenSSL and Python's `cryptography` produce and load.
 * @param {{x: string, p: string, q: string, g: string}} privateKey
 * @returns {Uint8Array}
 */
export function spkiOf(privateKey) {
  const key = privateKeyObject(privateKey);
  const pub = new KJUR.crypto.DSA();
  pub.setPublic(key.p, key.q, key.g, key.y);
  return fromHex(pemtohex(KEYUTIL.getPEM(pub)));
}

/**
 * Sign with SHA-256; DER SEQUENCE {r, s}.
 * @param {{x: string, p: string, q: string, g: string}} privateKey
 * @param {Uint8Array} data
 * @returns {Uint8Array}
 */
export function sign(privateKey, data) {
  const signer = new KJUR.crypto.Signature({ alg: ALGORITHM });
  signer.init(privateKeyObject(privateKey));
  signer.updateHex(toHex(asBytes(data)));
  return fromHex(signer.sign());
}

/**
 * Whether `signature` (DER) over `data` verifies for the DSA key in `spki`. The key must
 * be canonical DER (as Python's load_public_key demands) and the signature exactly the
 * DER of its (r, s), so a signature with trailing bytes is refused here as by OpenSSL.
 * @param {Uint8Array} spki
 * @param {Uint8Array} signature
 * @param {Uint8Array} data
 * @returns {boolean}
 */
export function verify(spki, signature, data) {
  try {
    const spkiHex = toHex(asBytes(spki));
    const key = new KJUR.crypto.DSA();
    key.readPKCS8PubKeyHex(spkiHex);
    if (spkiCanonical(key) !== spkiHex) return false;
    const sigHex = toHex(asBytes(signature));
    const [r, s] = key.parseASN1Signature(sigHex);
    const canonical = KJUR.asn1.ASN1Util.newObject({ seq: [{ int: { bigint: r } }, { int: { bigint: s } }] }).tohex();
    if (canonical !== sigHex) return false;
    const verifier = new KJUR.crypto.Signature({ alg: ALGORITHM });
    verifier.init(key);
    verifier.updateHex(toHex(asBytes(data)));
    return verifier.verify(sigHex) === true;
  } catch {
    return false;
  }
}

function spkiCanonical(publicKey) {
  return pemtohex(KEYUTIL.getPEM(publicKey));
}
