// Before the chat starts: make sure this browser holds the user's certified key pair.
//
//   1. keys in IndexedDB that the server still lists as the user's active pair → use them
//      (renewed first when a certificate ends within RENEW_WITHIN_DAYS);
//      keys that merely expired (not revoked, not replaced) → certify them again;
//   2. else a backup on the server → ask for its password, open it, and use those keys:
//      as they are if still active, certified again if not (a renewal of the same keys),
//      or, if they were revoked, fall through to 3;
//   3. else make new keys: the user picks the signing algorithm and the backup's protector,
//      the browser generates both keys, proves possession, backs them up, stores them.
//
// Keys are handled extractable only in memory, long enough to encrypt the backup; what is
// stored is re-imported non-extractable (keys/keystore.js explains why, and DSA's exception).

import { equalBytes } from "../crypto/bytes.js";
import { CryptoError } from "../crypto/errors.js";
import { exportSigningKey, generateSigningKey, importSigningKey } from "../crypto/signing.js";
import { exportEncryptionKey, generateEncryptionKey, importEncryptionKey } from "../crypto/wrapping.js";
import { decryptBackup, downloadBackup, encryptBackup, parseBackup, uploadBackup } from "./backup.js";
import * as defaultKeystore from "./keystore.js";
import { requestPersistentStorage } from "./keystore.js";
import { checkOwnCertificate, fetchCaInfo, registerKeys } from "./registration.js";

/** Renew certificates that end within this many days (as the Python client does). */
export const RENEW_WITHIN_DAYS = 30;
/** RSA size of the encryption key (protocol.md §2.2: 3072 by default). */
export const ENCRYPTION_KEY_BITS = 3072;
const BACKUP_ATTEMPTS = 3;

/** The steps shown while new keys are made, in order. */
export const GENERATE_STEPS = Object.freeze([
  { id: "signing", label: "Generating your signing key" },
  { id: "encryption", label: "Generating your encryption key" },
  { id: "possession", label: "Proving possession to the server" },
  { id: "backup", label: "Backing up your keys, encrypted" },
  { id: "store", label: "Storing your keys in this browser" },
]);

/** The steps shown while keys are restored from the backup. */
export const RESTORE_STEPS = Object.freeze([
  { id: "open", label: "Opening your key backup" },
  { id: "possession", label: "Proving possession to the server" },
  { id: "store", label: "Storing your keys in this browser" },
]);

/**
 * The user's keys object, ready for the chat engine, after whatever it takes (see the top
 * of this module). One tab at a time per user does this (Web Locks), so two tabs opened
 * together cannot each register a different pair.
 *
 * @param {object} options
 * @param {{getJson: Function, postJson: Function, putJson: Function}} options.http
 * @param {string} options.username the logged-in user (as the server spells it)
 * @param {object} options.ui what ui/keysetup.js's createKeySetupUi returns:
 *   `chooseAlgorithmAndProtector()`, `askBackupPassphrase({protector, error})`,
 *   `progress(steps, current)`, `fail(message)`, optionally `warn(message)` and `done(keys)`
 * @param {{loadKeys: Function, saveKeys: Function}} [options.keystore] default: IndexedDB
 * @param {() => Date} [options.now]
 * @returns {Promise<{username: string,
 *   signing: {algorithm: string, privateKey: any, spki: Uint8Array, serial: string, certificate: object},
 *   encryption: {privateKey: CryptoKey, spki: Uint8Array, serial: string, certificate: object},
 *   retired: Array<{signing: object, encryption: object}>}>} `retired`: pairs this browser
 *   used before (newest first), kept to read history wrapped to their encryption keys
 */
export async function ensureKeys(options) {
  if (typeof options?.username !== "string" || options.username === "") {
    throw new TypeError("ensureKeys needs the logged-in username.");
  }
  const locks = globalThis.navigator?.locks;
  const run = () => decide(options);
  try {
    const keys = locks?.request ? await locks.request(`securechat.keys.${options.username}`, run) : await run();
    options.ui.done?.(keys);
    return keys;
  } catch (error) {
    options.ui.fail(failureText(error));
    throw error;
  }
}

function failureText(error) {
  // Server codes and our own codes carry sentences written for people, with no secrets in
  // them; anything else is a bug or a browser problem, said plainly.
  if (error && typeof error.code === "string" && error.message) return error.message;
  return "Your keys could not be set up. Reload the page to try again.";
}

async function decide({ http, username, ui, keystore = defaultKeystore, now = () => new Date() }) {
  const context = { http, username, ui, keystore, now, authority: await fetchCaInfo(http) };
  const published = await http.getJson(`/api/keys/users/${encodeURIComponent(username)}/`);

  const stored = await keystore.loadKeys(username);
  if (stored) {
    const active = await activeCertificates(context, stored, published);
    if (active) return renewIfDue(context, stored, active, { reimport: false });
    // Only expired (or unknown to the server, e.g. a reset database): same keys, new
    // certificates. Replaced keys may be older than the backup, so the backup comes first.
    const status = await standing(http, stored.signing.serial);
    if (status === "expired" || status === "unknown") {
      const certificates = await certifyAgain(context, stored, { steps: null });
      if (certificates) return save(context, stored, certificates, { reimport: false });
    }
  }

  const blob = await downloadBackup(http);
  if (blob) {
    const restored = await restore(context, blob, published);
    if (restored) return restored;
  }
  return generate(context);
}

// Certificates the server lists as active for me, checked in their DER against the CA,
// if they certify exactly these keys; else null.
async function activeCertificates({ authority, username }, keys, published) {
  if (!published.signing || !published.encryption) return null;
  try {
    const signing = await checkOwnCertificate(published.signing, {
      authority,
      username,
      kind: "signing",
      spki: keys.signing.spki,
    });
    const encryption = await checkOwnCertificate(published.encryption, {
      authority,
      username,
      kind: "encryption",
      spki: keys.encryption.spki,
    });
    const notAfter = Math.min(signing.notAfter.getTime(), encryption.notAfter.getTime());
    return { signing: published.signing, encryption: published.encryption, notAfter };
  } catch (error) {
    // Another key (replaced), or a certificate that does not check out: not active.
    if (error instanceof CryptoError) return null;
    throw error;
  }
}

// What became of a pair the server no longer lists: "revoked", "superseded", "expired"
// (status still active, so only its validity ran out) or "unknown".
async function standing(http, serial) {
  if (!serial) return "unknown";
  try {
    const body = await http.getJson(`/api/keys/certificates/${encodeURIComponent(serial)}/`);
    return body.status === "active" ? "expired" : body.status;
  } catch (error) {
    if (error?.code === "unknown_certificate") return "unknown";
    throw error;
  }
}

// Same keys, new certificates, when the active ones end within RENEW_WITHIN_DAYS (as
// the Python client's renew_if_due): contacts' pins are on the keys, so nothing changes
// for them, and the server re-keys no conversation.
async function renewIfDue(context, keys, active, { reimport }) {
  const horizon = context.now().getTime() + RENEW_WITHIN_DAYS * 86_400_000;
  let certificates = active;
  if (active.notAfter <= horizon) {
    try {
      certificates = await register(context, keys);
    } catch (error) {
      // Still valid for a while: chat now, renew on a later load. Only refusals and
      // network failures are expected here; anything else is a bug and is thrown.
      if (typeof error?.code !== "string") throw error;
      context.ui.warn?.("Your certificates could not be renewed now; SecureChat will try again next time.");
    }
  }
  return save(context, keys, certificates, { reimport });
}

function register({ http, username, authority }, keys) {
  return registerKeys(http, { username, authority, signing: keys.signing, encryption: keys.encryption });
}

// Register `keys` again (same keys, new certificates). Null when the server refuses them
// for good (revoked, or certified to someone else): the caller makes new keys.
async function certifyAgain(context, keys, { steps }) {
  if (steps) context.ui.progress(steps, steps.findIndex((step) => step.id === "possession"));
  try {
    return await register(context, keys);
  } catch (error) {
    if (error?.code === "key_revoked" || error?.code === "key_reused") {
      context.ui.warn?.("Your previous keys were revoked, so new keys will be made.");
      return null;
    }
    throw error;
  }
}

async function restore(context, blob, published) {
  const { ui, username } = context;
  let header;
  try {
    header = parseBackup(blob);
  } catch {
    ui.warn?.("Your key backup on the server cannot be read, so new keys will be made.");
    return null;
  }
  let error = null;
  let keys;
  for (;;) {
    const passphrase = await ui.askBackupPassphrase({ protector: header.protector, error });
    if (passphrase === null || passphrase === undefined) return null; // "make new keys instead"
    ui.progress(RESTORE_STEPS, 0);
    try {
      keys = await decryptBackup(blob, passphrase, username);
      break;
    } catch (failure) {
      if (failure?.code === "backup_passphrase_wrong") {
        error = failure.message;
        continue;
      }
      if (failure?.code === "backup_invalid") {
        ui.warn?.("Your key backup on the server cannot be read, so new keys will be made.");
        return null;
      }
      throw failure;
    }
  }
  const active = await activeCertificates(context, keys, published);
  let saved;
  if (active) {
    ui.progress(RESTORE_STEPS, RESTORE_STEPS.length - 1);
    saved = await renewIfDue(context, keys, active, { reimport: true });
  } else {
    // Not the active pair any more (expired, or replaced by keys made elsewhere that were
    // never backed up): certify these again. Revoked keys are refused: make new ones.
    const certificates = await certifyAgain(context, keys, { steps: RESTORE_STEPS });
    if (!certificates) return null;
    ui.progress(RESTORE_STEPS, RESTORE_STEPS.length - 1);
    saved = await save(context, keys, certificates, { reimport: true });
  }
  ui.progress(RESTORE_STEPS, RESTORE_STEPS.length);
  return saved;
}

async function generate(context) {
  const { http, username, ui, authority } = context;
  const choice = await ui.chooseAlgorithmAndProtector();
  const step = (id) => ui.progress(GENERATE_STEPS, GENERATE_STEPS.findIndex((s) => s.id === id));

  step("signing");
  const signing = await generateSigningKey(choice.algorithm, { dsaParameters: authority.dsa_parameters });
  step("encryption");
  const encryption = await generateEncryptionKey(ENCRYPTION_KEY_BITS);
  step("possession");
  const certificates = await registerKeys(http, { username, signing, encryption, authority });

  step("backup");
  const blob = await encryptBackup(
    {
      signing: { ...signing, serial: certificates.signing.serial },
      encryption: { ...encryption, serial: certificates.encryption.serial },
    },
    choice.passphrase,
    { protector: choice.protector, username },
  );
  await uploadWithRetries(http, blob, ui);

  step("store");
  const saved = await save(context, { signing, encryption }, certificates, { reimport: true });
  ui.progress(GENERATE_STEPS, GENERATE_STEPS.length);
  return saved;
}

async function uploadWithRetries(http, blob, ui) {
  let lastError;
  for (let attempt = 1; attempt <= BACKUP_ATTEMPTS; attempt += 1) {
    try {
      await uploadBackup(http, blob);
      return true;
    } catch (error) {
      lastError = error;
      // A version conflict means another device wrote meanwhile; these keys were just
      // certified and superseded that device's, so they are the backup to keep: the next
      // attempt reads the new version and writes over it. Other refusals will not change.
      const retriable = error?.code === "backup_version_conflict" || error?.status === 0 || error?.status >= 500;
      if (!retriable) break;
      await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
    }
  }
  // The keys are certified and about to be stored: chatting works, but no other browser
  // can restore them. Say so instead of throwing the new keys away.
  ui.warn?.(
    `Your keys could not be backed up (${lastError?.code ?? "error"}). ` +
      "They work in this browser, but another browser will not be able to restore them.",
  );
  return false;
}

/** How many replaced key pairs a browser keeps (to read history wrapped to them). */
const RETIRED_KEPT = 10;

// Store non-extractable copies (unless they already are) with their certificates, and
// return the keys object the chat engine uses. A different pair stored before is kept in
// `retired` (newest first): epochs wrapped to the old encryption key stay readable here.
async function save({ username, keystore }, keys, certificates, { reimport }) {
  let signingKey = keys.signing.privateKey;
  let encryptionKey = keys.encryption.privateKey;
  if (reimport) {
    const signing = await importSigningKey(await exportSigningKey(keys.signing), { extractable: false });
    signingKey = signing.privateKey;
    encryptionKey = await importEncryptionKey(await exportEncryptionKey(keys.encryption.privateKey), {
      extractable: false,
    });
  }
  const previous = await keystore.loadKeys(username);
  let retired = previous?.retired ?? [];
  if (previous && !samePair(previous, keys)) {
    const pair = { signing: previous.signing, encryption: previous.encryption };
    retired = [pair, ...retired.filter((old) => !samePair(old, keys))].slice(0, RETIRED_KEPT);
  }
  const stored = {
    username,
    signing: {
      algorithm: keys.signing.algorithm,
      privateKey: signingKey,
      spki: keys.signing.spki,
      serial: certificates.signing.serial,
      certificate: certificates.signing,
    },
    encryption: {
      privateKey: encryptionKey,
      spki: keys.encryption.spki,
      serial: certificates.encryption.serial,
      certificate: certificates.encryption,
    },
    retired,
  };
  await keystore.saveKeys(username, stored);
  await requestPersistentStorage();
  return stored;
}

function samePair(a, b) {
  return equalBytes(a.signing.spki, b.signing.spki) && equalBytes(a.encryption.spki, b.encryption.spki);
}
