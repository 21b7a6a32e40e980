// keys/setup.js's ensureKeys, driven end to end against a real SecureChat server (daphne +
// SQLite + redis, started by fixtures/key_server.py): first registration by proof of
// possession, reuse of stored keys, restore from the backup in a "new browser", renewal,
// revocation, and giving up on a forgotten passphrase. IndexedDB is the one thing Node
// lacks, so a "browser" here is an in-memory keystore holding structured clones, as
// IndexedDB would (CryptoKeys clone, non-extractable stays non-extractable).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { b64decode, equalBytes, utf8 } from "../src/crypto/bytes.js";
import { generateSigningKey, sign, verify } from "../src/crypto/signing.js";
import { generateEncryptionKey, oaepDecrypt, oaepEncrypt } from "../src/crypto/wrapping.js";
import { decryptBackup, downloadBackup, encryptBackup, parseBackup, uploadBackup } from "../src/keys/backup.js";
import { GENERATE_STEPS, RESTORE_STEPS, ensureKeys } from "../src/keys/setup.js";
import { createHttp } from "../src/net/http.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PYTHON = `${ROOT}.venv/bin/python`;
const USERS = ["alice", "bob", "carol", "dave", "erin"];
const DAY = 86_400_000;

let server;
let info;
let serverLines;

/** Make `username`'s active certificates expired, as the server sees them. */
async function expireCertificates(username) {
  const answer = new Promise((resolve) => serverLines.once("line", resolve));
  server.stdin.write(`expire ${username}\n`);
  assert.match(await answer, /^expired [1-9]/);
}

before(async () => {
  assert.ok(existsSync(PYTHON), `The project's venv is missing (${PYTHON}): run make install first.`);
  server = spawn(PYTHON, [`${ROOT}frontend/test/fixtures/key_server.py`, ...USERS], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  serverLines = createInterface({ input: server.stdout });
  info = await new Promise((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`key_server.py exited with ${code}`)));
    serverLines.once("line", (line) => resolve(JSON.parse(line)));
  });
});

after(() => {
  server?.stdin.end(); // key_server.py stops daphne and redis when its stdin closes
});

/** A logged-in session: fetch with a cookie jar, and createHttp on it. */
async function login(username) {
  const jar = new Map();
  const cookieFetch = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set("Cookie", [...jar].map(([name, value]) => `${name}=${value}`).join("; "));
    const response = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    return response;
  };
  const page = await (await cookieFetch(`${info.url}/accounts/login/`)).text();
  const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(page)?.[1] ?? "";
  const answer = await cookieFetch(`${info.url}/accounts/login/`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username, password: info.passwords[username], csrfmiddlewaretoken: token }),
  });
  assert.equal(answer.status, 302, `login of ${username} failed`);
  return createHttp({ csrfToken: () => jar.get("csrftoken") ?? "", fetch: cookieFetch, baseUrl: info.url });
}

/** One browser's IndexedDB, as far as the keys go: structured clones in and out. */
function memoryKeystore() {
  const records = new Map();
  return {
    records,
    async loadKeys(username) {
      return records.has(username) ? structuredClone(records.get(username)) : null;
    },
    async saveKeys(username, keys) {
      records.set(username, structuredClone(keys));
    },
  };
}

/** A user at the key screen: answers from a script, and a log of what was shown. */
function scriptedUi({ choice, passphrases = [] } = {}) {
  const log = { chose: 0, asked: [], progress: [], warnings: [], failures: [], done: 0 };
  return {
    log,
    async chooseAlgorithmAndProtector() {
      log.chose += 1;
      assert.ok(choice, "the screen asked to make new keys, which this case did not expect");
      return choice;
    },
    async askBackupPassphrase(request) {
      log.asked.push(request);
      assert.ok(passphrases.length, "the screen asked for a backup password once more than expected");
      return passphrases.shift();
    },
    progress(steps, current) {
      log.progress.push([steps, current]);
    },
    warn(message) {
      log.warnings.push(message);
    },
    fail(message) {
      log.failures.push(message);
    },
    done() {
      log.done += 1;
    },
  };
}

async function assertUsable(keys) {
  const data = utf8("proof that the stored keys work");
  await verify(keys.signing.spki, await sign(keys.signing, data), data);
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const opened = await oaepDecrypt(keys.encryption.privateKey, await oaepEncrypt(keys.encryption.spki, secret));
  assert.ok(equalBytes(opened, secret));
}

async function published(http, username) {
  return http.getJson(`/api/keys/users/${username}/`);
}

describe("ensureKeys against a real server", () => {
  test("a first visit makes keys, proves possession, backs up and stores them non-extractable", async () => {
    const http = await login("alice");
    const browser = memoryKeystore();
    const ui = scriptedUi({
      choice: { algorithm: "ed25519", protector: "login-password", passphrase: info.passwords.alice },
    });
    const keys = await ensureKeys({ http, username: "alice", ui, keystore: browser });

    assert.equal(ui.log.chose, 1);
    assert.deepEqual(ui.log.asked, []);
    assert.deepEqual(
      ui.log.progress.map(([steps, current]) => steps[current]?.id ?? "finished"),
      [...GENERATE_STEPS.map((step) => step.id), "finished"],
    );
    assert.equal(ui.log.done, 1);
    assert.deepEqual(ui.log.failures, []);

    const listed = await published(http, "alice");
    assert.equal(keys.signing.serial, listed.signing.serial);
    assert.equal(keys.encryption.serial, listed.encryption.serial);
    assert.equal(keys.signing.algorithm, "ed25519");
    assert.equal(keys.signing.privateKey.extractable, false);
    assert.equal(keys.encryption.privateKey.extractable, false);
    const stored = await browser.loadKeys("alice");
    assert.equal(stored.signing.privateKey.extractable, false);
    await assertUsable(stored);

    const blob = await downloadBackup(http);
    assert.equal(parseBackup(blob).protector, "login-password");
    const restored = await decryptBackup(blob, info.passwords.alice, "alice");
    assert.ok(equalBytes(restored.signing.spki, keys.signing.spki));
    assert.ok(equalBytes(restored.encryption.spki, keys.encryption.spki));
  });

  test("stored keys that are still active are used as they are, without asking anything", async () => {
    const http = await login("alice");
    const browser = memoryKeystore();
    const first = await ensureKeys({
      http,
      username: "alice",
      ui: scriptedUi({ passphrases: [info.passwords.alice] }),
      keystore: browser,
    });
    const ui = scriptedUi();
    const again = await ensureKeys({ http, username: "alice", ui, keystore: browser });
    assert.equal(again.signing.serial, first.signing.serial);
    assert.equal(ui.log.chose + ui.log.asked.length + ui.log.progress.length, 0);
  });

  test("a new browser restores the backup, asking again after a wrong password", async () => {
    const http = await login("alice");
    const before = await published(http, "alice");
    const browser = memoryKeystore();
    const ui = scriptedUi({ passphrases: ["not the password", info.passwords.alice] });
    const keys = await ensureKeys({ http, username: "alice", ui, keystore: browser });

    assert.equal(ui.log.chose, 0);
    assert.deepEqual(
      ui.log.asked.map((request) => [request.protector, request.error === null]),
      [
        ["login-password", true],
        ["login-password", false],
      ],
    );
    assert.match(ui.log.asked[1].error, /does not open/);
    // Still the active pair: used with the certificates the server lists, no new ones.
    assert.equal(keys.signing.serial, before.signing.serial);
    assert.equal(keys.encryption.privateKey.extractable, false);
    assert.equal(ui.log.progress.at(-1)[1], RESTORE_STEPS.length);
    await assertUsable(keys);
  });

  test("certificates ending within 30 days are renewed: same keys, new serials", async () => {
    const http = await login("alice");
    const browser = memoryKeystore();
    const keys = await ensureKeys({
      http,
      username: "alice",
      ui: scriptedUi({ passphrases: [info.passwords.alice] }),
      keystore: browser,
    });
    const later = () => new Date(Date.now() + 340 * DAY);
    const renewed = await ensureKeys({ http, username: "alice", ui: scriptedUi(), keystore: browser, now: later });
    assert.notEqual(renewed.signing.serial, keys.signing.serial);
    assert.ok(equalBytes(renewed.signing.spki, keys.signing.spki));
    const old = await http.getJson(`/api/keys/certificates/${keys.signing.serial}/`);
    assert.equal(old.status, "superseded");
    assert.equal((await published(http, "alice")).signing.serial, renewed.signing.serial);
    assert.equal((await browser.loadKeys("alice")).signing.serial, renewed.signing.serial);
  });

  test("stored keys whose certificates expired are certified again, without asking anything", async () => {
    const http = await login("alice");
    const browser = memoryKeystore();
    const keys = await ensureKeys({
      http,
      username: "alice",
      ui: scriptedUi({ passphrases: [info.passwords.alice] }),
      keystore: browser,
    });
    await expireCertificates("alice");
    assert.deepEqual(await published(http, "alice"), {});
    const ui = scriptedUi();
    const again = await ensureKeys({ http, username: "alice", ui, keystore: browser });
    assert.equal(ui.log.chose + ui.log.asked.length, 0);
    assert.ok(equalBytes(again.signing.spki, keys.signing.spki));
    assert.notEqual(again.signing.serial, keys.signing.serial);
    assert.equal((await published(http, "alice")).signing.serial, again.signing.serial);
    assert.equal((await browser.loadKeys("alice")).encryption.serial, again.encryption.serial);
    await assertUsable(again);
  });

  test("revoked keys are replaced by new ones, and the old browser then restores those", async () => {
    const http = await login("bob");
    const oldBrowser = memoryKeystore();
    const passphrase = "correct horse battery staple";
    const original = await ensureKeys({
      http,
      username: "bob",
      ui: scriptedUi({ choice: { algorithm: "ecdsa-p256", protector: "passphrase", passphrase } }),
      keystore: oldBrowser,
    });
    await http.postJson("/api/keys/revoke/", { reason: "lost laptop" });

    // A new browser: the backup opens, but its keys were revoked, so new keys are made.
    const newBrowser = memoryKeystore();
    const ui = scriptedUi({
      passphrases: [passphrase],
      choice: { algorithm: "rsa-pss", protector: "passphrase", passphrase },
    });
    const replacement = await ensureKeys({ http, username: "bob", ui, keystore: newBrowser });
    assert.equal(ui.log.asked[0].protector, "passphrase");
    assert.equal(ui.log.chose, 1);
    assert.match(ui.log.warnings.join(" "), /revoked/);
    assert.equal(replacement.signing.algorithm, "rsa-pss");
    assert.ok(!equalBytes(replacement.signing.spki, original.signing.spki));
    await assertUsable(replacement);

    // The old browser's keys are revoked: it restores the new backup, keeping the old pair
    // as retired (to read history wrapped to it).
    const oldUi = scriptedUi({ passphrases: [passphrase] });
    const restored = await ensureKeys({ http, username: "bob", ui: oldUi, keystore: oldBrowser });
    assert.ok(equalBytes(restored.signing.spki, replacement.signing.spki));
    assert.equal(restored.retired.length, 1);
    assert.ok(equalBytes(restored.retired[0].signing.spki, original.signing.spki));
  });

  test("a blob of one user does not open as another's", async () => {
    const aliceHttp = await login("alice");
    const aliceBlob = await downloadBackup(aliceHttp);
    await assert.rejects(decryptBackup(aliceBlob, info.passwords.alice, "bob"), { code: "backup_passphrase_wrong" });
  });

  test("choosing to make new keys instead of restoring replaces the backup", async () => {
    const http = await login("carol");
    const first = await ensureKeys({
      http,
      username: "carol",
      ui: scriptedUi({ choice: { algorithm: "ed25519", protector: "passphrase", passphrase: "forgotten-one" } }),
      keystore: memoryKeystore(),
    });
    const version = (await http.getJson("/api/keys/backup/")).version;
    const ui = scriptedUi({
      passphrases: [null],
      choice: { algorithm: "ed25519", protector: "login-password", passphrase: info.passwords.carol },
    });
    const fresh = await ensureKeys({ http, username: "carol", ui, keystore: memoryKeystore() });
    assert.ok(!equalBytes(fresh.signing.spki, first.signing.spki));
    const stored = await http.getJson("/api/keys/backup/");
    assert.equal(stored.version, version + 1);
    assert.equal(parseBackup(b64decode(stored.blob)).protector, "login-password");
  });

  test("the backup endpoint: none is null, uploads write stored + 1, a stale version is refused", async () => {
    const http = await login("erin");
    assert.equal(await downloadBackup(http), null);
    const keys = { signing: await generateSigningKey("ed25519"), encryption: await generateEncryptionKey(2048) };
    const blob = await encryptBackup(keys, "erin's passphrase", { protector: "passphrase", username: "erin" });
    assert.deepEqual(await uploadBackup(http, blob), { version: 1 });
    assert.deepEqual(await uploadBackup(http, blob), { version: 2 });
    assert.ok(equalBytes(await downloadBackup(http), blob));
    await assert.rejects(http.putJson("/api/keys/backup/", { blob: "AA==", version: 2 }), {
      name: "HttpError",
      status: 409,
      code: "backup_version_conflict",
    });
  });

  test("DSA keys are made from the server's parameters and restore from the backup", async () => {
    const http = await login("dave");
    const passphrase = "dsa-backup-passphrase";
    const made = await ensureKeys({
      http,
      username: "dave",
      ui: scriptedUi({ choice: { algorithm: "dsa", protector: "passphrase", passphrase } }),
      keystore: memoryKeystore(),
    });
    assert.equal(made.signing.algorithm, "dsa");
    const restored = await ensureKeys({
      http,
      username: "dave",
      ui: scriptedUi({ passphrases: [passphrase] }),
      keystore: memoryKeystore(),
    });
    assert.equal(restored.signing.serial, made.signing.serial);
    await assertUsable(restored);
  });
});
