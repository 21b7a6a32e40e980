// Certifying this browser's keys by proof of possession (protocol.md §2.1): the server
// certifies a key pair only for a client that can sign its nonce with the signing key and
// decrypt its secret with the encryption key.

import { b64decode, b64encode, equalBytes } from "../crypto/bytes.js";
import { verifyCertificate } from "../crypto/certs.js";
import { popChallenge } from "../crypto/encoding.js";
import { CryptoError } from "../crypto/errors.js";
import { sign } from "../crypto/signing.js";
import { oaepDecrypt } from "../crypto/wrapping.js";

/**
 * GET /api/keys/ca/: `{certificates (base64 DER, active CA first), pem, server_signing,
 * dsa_parameters: {p, q, g} (hex)}`.
 * @param {{getJson: Function}} http
 * @returns {Promise<object>}
 */
export function fetchCaInfo(http) {
  return http.getJson("/api/keys/ca/");
}

/**
 * Check a certificate object the server gave for one of *my* keys: issued by one of our
 * CAs for `username` and `kind` (protocol.md §2.2, points 1-6, at now), and certifying
 * exactly `spki`. The server's JSON fields are hints; only the DER counts.
 * @param {object} body a certificate object
 * @param {{authority: object, username: string, kind: "signing" | "encryption",
 *   spki: Uint8Array}} expected
 * @returns {Promise<object>} the parsed certificate (crypto/certs.js)
 * @throws {CryptoError} `untrusted_certificate` / `certificate_revoked` from the check, or
 *   `untrusted_certificate` when it certifies another key
 */
export async function checkOwnCertificate(body, { authority, username, kind, spki }) {
  const parsed = await verifyCertificate(b64decode(body.certificate), {
    authorities: authority.certificates.map((der) => b64decode(der)),
    username,
    kind,
    serial: body.serial,
    at: null,
    revoked: new Set(body.status === "revoked" ? [body.serial] : []),
  });
  if (!equalBytes(parsed.spki, spki)) {
    throw new CryptoError("untrusted_certificate", `This ${kind} certificate is for another key.`);
  }
  return parsed;
}

/**
 * Prove possession of both private keys and get them certified.
 *
 * POST /api/keys/challenge/ with both SPKIs; sign popChallenge(username, nonce, SPKIs)
 * with the signing key; decrypt `encrypted_secret` with the encryption key; POST
 * /api/keys/register/. Registering the user's active pair again is a renewal (`renewed`).
 * Both certificates are checked against the CA before they are returned.
 *
 * @param {{getJson: Function, postJson: Function}} http
 * @param {{username: string,
 *   signing: {algorithm: string, privateKey: any, spki: Uint8Array},
 *   encryption: {privateKey: CryptoKey, spki: Uint8Array},
 *   authority?: object}} request `authority` is GET /api/keys/ca/ (fetched if absent)
 * @returns {Promise<{signing: object, encryption: object, renewed: boolean}>} the two
 *   certificate objects, as the server sent them
 * @throws {import("../net/http.js").HttpError} with the server's code (`key_reused`,
 *   `key_revoked`, `pop_signature_invalid`, ...)
 * @throws {CryptoError} `untrusted_certificate` when what came back does not check out
 */
export async function registerKeys(http, { username, signing, encryption, authority }) {
  const keys = {
    signing_key: b64encode(signing.spki),
    encryption_key: b64encode(encryption.spki),
  };
  const challenge = await http.postJson("/api/keys/challenge/", keys);
  // The nonce is signed as its decoded 32 bytes, not its base64 text (§2.1 step 2).
  const signed = await popChallenge({
    username,
    nonce: b64decode(challenge.nonce),
    signingSpki: signing.spki,
    encryptionSpki: encryption.spki,
  });
  const signature = await sign(signing, signed);
  const secret = await oaepDecrypt(encryption.privateKey, b64decode(challenge.encrypted_secret));
  const issued = await http.postJson("/api/keys/register/", {
    ...keys,
    challenge_id: challenge.challenge_id,
    signature: b64encode(signature),
    secret: b64encode(secret),
  });
  const ca = authority ?? (await fetchCaInfo(http));
  await checkOwnCertificate(issued.signing, { authority: ca, username, kind: "signing", spki: signing.spki });
  await checkOwnCertificate(issued.encryption, {
    authority: ca,
    username,
    kind: "encryption",
    spki: encryption.spki,
  });
  return { signing: issued.signing, encryption: issued.encryption, renewed: Boolean(issued.renewed) };
}
