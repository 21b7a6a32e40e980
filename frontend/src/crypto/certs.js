// X.509 certificates with @peculiar/x509: parse, and the client's acceptance rule of
// protocol.md §2.2 points 1-6, written like client/securechat_client/trust.py
// (TrustStore.certificate: issued by one of our CAs, serial, profile, validity, not
// revoked). Point 7, the pin, is the caller's (it owns the pin store). The server's JSON
// fields about a certificate are hints; only what is checked here in the DER counts.
//
// This module is in the main bundle: it stays small and leaves the heavy lifting to the
// library and to WebCrypto.

import "reflect-metadata"; // @peculiar/x509 (through tsyringe) needs the Reflect metadata API
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  X509Certificate,
  cryptoProvider,
} from "@peculiar/x509";

import { asBytes, equalBytes } from "./bytes.js";
import { CryptoError } from "./errors.js";

// The library keeps its own provider slot; it gets the platform's WebCrypto, the same one
// every other module here uses (browser and Node alike).
cryptoProvider.set(globalThis.crypto);

export const SERVER_NAME = "SecureChat server";
const KINDS = new Set(["signing", "encryption", "server-signing"]);
const OID_COMMON_NAME = "2.5.4.3";

function untrusted(message) {
  return new CryptoError("untrusted_certificate", message);
}

/** Serial as the protocol writes it: lowercase hex without leading zeros (`f"{n:x}"`). */
function serialHex(hex) {
  return BigInt(`0x${hex || "0"}`).toString(16);
}

/**
 * What a certificate says, parsed from its DER. `commonName` is the subject's single CN,
 * or null when it has none or several; `keyUsage` is null when the extension is absent.
 * @param {Uint8Array} der
 * @returns {{serial: string, commonName: string|null, subject: string, issuer: string,
 *   notBefore: Date, notAfter: Date, keyUsage: {digitalSignature: boolean,
 *   keyEncipherment: boolean, keyCertSign: boolean}|null, isCA: boolean,
 *   spki: Uint8Array, signatureAlgorithm: string, der: Uint8Array}}
 * @throws {CryptoError} `untrusted_certificate` when it is not a certificate
 */
export function parseCertificate(der) {
  const bytes = asBytes(der);
  try {
    return describe(new X509Certificate(bytes), bytes);
  } catch {
    throw untrusted("Not a certificate.");
  }
}

/** RFC 4514 text with the userId attribute (our subjects' UID) named, for people to read. */
function readableName(text) {
  return text.replaceAll("0.9.2342.19200300.100.1.1=", "UID=");
}

function describe(certificate, der) {
  const usage = certificate.getExtension(KeyUsagesExtension);
  const names = certificate.subjectName.getField(OID_COMMON_NAME);
  const algorithm = certificate.signatureAlgorithm;
  return {
    serial: serialHex(certificate.serialNumber),
    commonName: names.length === 1 ? names[0] : null,
    subject: readableName(certificate.subject),
    issuer: readableName(certificate.issuer),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    keyUsage: usage
      ? {
          digitalSignature: Boolean(usage.usages & KeyUsageFlags.digitalSignature),
          keyEncipherment: Boolean(usage.usages & KeyUsageFlags.keyEncipherment),
          keyCertSign: Boolean(usage.usages & KeyUsageFlags.keyCertSign),
        }
      : null,
    isCA: Boolean(certificate.getExtension(BasicConstraintsExtension)?.ca),
    spki: new Uint8Array(certificate.publicKey.rawData),
    signatureAlgorithm: [algorithm.name, algorithm.hash?.name].filter(Boolean).join(" with "),
    der,
  };
}

/** Point 1: signed directly by one of the CA certificates (any listed generation). */
async function issuedByOne(certificate, authorities) {
  const issuer = new Uint8Array(certificate.issuerName.toArrayBuffer());
  for (const der of authorities) {
    try {
      const ca = new X509Certificate(asBytes(der));
      // As cryptography's verify_directly_issued_by: the issuer name must be the CA's
      // subject, and the CA's key must verify the signature.
      if (!equalBytes(issuer, new Uint8Array(ca.subjectName.toArrayBuffer()))) continue;
      if (await certificate.verify({ publicKey: ca.publicKey, signatureOnly: true })) return true;
    } catch {
      // an unreadable authority or an unsupported signature verifies nothing
    }
  }
  return false;
}

/**
 * Accept a certificate for `username` and `kind` only if (protocol.md §2.2):
 * 1. one of `authorities` signed it directly; 2. its serial is `serial` (when given);
 * 3. key usage holds the role's usage, and a signing certificate has no keyEncipherment;
 * 4. the subject has exactly one CN, equal to `username` (SecureChat server for kind
 * "server-signing"; a null `username` skips the name, as Python's does); 5. it is valid
 * at `at` (null: now; a later time is clamped to now, a claimed time never lies in the
 * future); 6. its serial is not in `revoked`.
 * @param {Uint8Array} der
 * @param {{authorities: Uint8Array[], username?: string|null,
 *   kind: "signing"|"encryption"|"server-signing", serial?: string|null,
 *   at?: Date|null, revoked?: Set<string>}} expected
 * @returns {Promise<ReturnType<typeof parseCertificate>>} the parsed certificate
 * @throws {CryptoError} `untrusted_certificate` or `certificate_revoked`
 */
export async function verifyCertificate(der, { authorities, username = null, kind, serial = null, at = null, revoked = new Set() }) {
  if (!KINDS.has(kind)) throw untrusted(`Unknown certificate kind ${kind}.`);
  const bytes = asBytes(der);
  let certificate;
  let parsed;
  try {
    certificate = new X509Certificate(bytes);
    parsed = describe(certificate, bytes);
  } catch {
    throw untrusted("Not a certificate.");
  }
  if (!(await issuedByOne(certificate, authorities ?? []))) throw untrusted("Not issued by the SecureChat CA.");
  if (serial != null && parsed.serial !== serial) throw untrusted("The server answered another certificate.");
  if (kind === "server-signing" && username != null && username !== SERVER_NAME) {
    throw untrusted("The server's signing certificate is named SecureChat server.");
  }
  checkProfile(parsed, { username: kind === "server-signing" ? SERVER_NAME : username, kind });
  checkValidity(parsed, at);
  if (revoked?.has(parsed.serial)) {
    throw new CryptoError("certificate_revoked", `Certificate ${parsed.serial} is revoked.`);
  }
  return parsed;
}

/** Points 3 and 4: key usage for `kind`, and the subject's single common name. */
function checkProfile(parsed, { username, kind }) {
  const usage = parsed.keyUsage;
  if (!usage) throw untrusted("The certificate has no key usage.");
  const wanted = kind === "encryption" ? usage.keyEncipherment : usage.digitalSignature;
  if (!wanted || (kind !== "encryption" && usage.keyEncipherment)) {
    throw untrusted(`The certificate is not for ${kind}.`);
  }
  if (username != null && parsed.commonName !== username) {
    throw untrusted(`The certificate is not ${username}'s.`);
  }
}

/** Point 5: valid at `at`, never later than now (the bounds are inclusive, as in Python). */
function checkValidity(parsed, at) {
  const now = Date.now();
  const when = at == null ? now : Math.min(new Date(at).getTime(), now);
  if (!(parsed.notBefore.getTime() <= when && when <= parsed.notAfter.getTime())) {
    throw untrusted("The certificate was not valid then.");
  }
}
