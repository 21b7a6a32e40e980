// This browser's private keys and client state, in IndexedDB.
//
// Database `securechat`, two object stores:
//   * `keys`:  one record per username, the keys object (see saveKeys);
//   * `state`: one record per (username, name), for pins, verification marks and
//     conversation chains: whatever structured-clone value the owner module keeps.
// Everything is keyed by username, so two accounts used in one browser never read each
// other's keys or trust state.
//
// Private keys are stored as non-extractable CryptoKeys: IndexedDB keeps a CryptoKey by
// structured clone without ever exposing its bytes, so script running in this origin later
// (an XSS included) can use the keys while the page is open but cannot copy them out.
// DSA is the exception: WebCrypto has no DSA, so a DSA private key is a {x, p, q, g} hex
// object that any script of this origin can read (docs/browser-keys.md).

const DATABASE = "securechat";
const VERSION = 1;
const KEYS = "keys";
const STATE = "state";

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function checkUsername(username) {
  if (typeof username !== "string" || username === "") {
    throw new TypeError("A username is required.");
  }
}

/**
 * Open a keystore on an IndexedDB factory. The module-level functions below use the
 * browser's own (`globalThis.indexedDB`); tests may pass another factory or name.
 * @param {object} [options]
 * @param {IDBFactory} [options.indexedDB]
 * @param {string} [options.name] database name (default "securechat")
 * @returns {{loadKeys: Function, saveKeys: Function, deleteKeys: Function,
 *   loadState: Function, saveState: Function, deleteState: Function, close: Function}}
 */
export function openKeystore({ indexedDB: factory = globalThis.indexedDB, name = DATABASE } = {}) {
  let opening = null;

  function database() {
    if (!factory) throw new Error("This browser has no IndexedDB: keys cannot be kept.");
    opening ??= new Promise((resolve, reject) => {
      const request = factory.open(name, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(KEYS)) db.createObjectStore(KEYS);
        if (!db.objectStoreNames.contains(STATE)) db.createObjectStore(STATE);
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading the schema: let it, and reopen on our next call.
        db.onversionchange = () => {
          db.close();
          opening = null;
        };
        resolve(db);
      };
      request.onerror = () => {
        opening = null;
        reject(request.error);
      };
      request.onblocked = () => {
        opening = null;
        reject(new Error("The key database is blocked by another tab; close it and retry."));
      };
    });
    return opening;
  }

  // One request in its own transaction; a write resolves only once the transaction has
  // committed ("strict" durability where supported), so a key reported saved is on disk.
  async function run(storeName, mode, makeRequest) {
    const db = await database();
    const options = mode === "readwrite" ? { durability: "strict" } : undefined;
    const transaction = db.transaction(storeName, mode, options);
    const result = promised(makeRequest(transaction.objectStore(storeName)));
    const done = new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("Transaction aborted."));
    });
    const [value] = await Promise.all([result, done]);
    return value;
  }

  return {
    async loadKeys(username) {
      checkUsername(username);
      const keys = await run(KEYS, "readonly", (store) => store.get(username));
      // A record under another name than its own would be a bug; never hand it out.
      return keys && keys.username === username ? keys : null;
    },
    async saveKeys(username, keys) {
      checkUsername(username);
      if (!keys || keys.username !== username) {
        throw new TypeError("These keys belong to another username.");
      }
      await run(KEYS, "readwrite", (store) => store.put(keys, username));
    },
    async deleteKeys(username) {
      checkUsername(username);
      await run(KEYS, "readwrite", (store) => store.delete(username));
    },
    async loadState(username, stateName) {
      checkUsername(username);
      const value = await run(STATE, "readonly", (store) => store.get([username, stateName]));
      return value === undefined ? null : value;
    },
    async saveState(username, stateName, value) {
      checkUsername(username);
      await run(STATE, "readwrite", (store) => store.put(value, [username, stateName]));
    },
    async deleteState(username, stateName) {
      checkUsername(username);
      await run(STATE, "readwrite", (store) => store.delete([username, stateName]));
    },
    async close() {
      if (opening) (await opening).close();
      opening = null;
    },
  };
}

let defaultStore = null;
function store() {
  defaultStore ??= openKeystore();
  return defaultStore;
}

/**
 * The keys object saved for `username` in this browser, or null.
 * Shape (the contract with the chat engine): `{username, signing: {algorithm, privateKey,
 * spki: Uint8Array, serial, certificate}, encryption: {privateKey, spki, serial,
 * certificate}, retired: [{signing, encryption}]}`; `certificate` is the server's
 * certificate object, `privateKey` a non-extractable CryptoKey (for DSA signing keys the
 * `{x, p, q, g}` hex object); `retired` holds pairs this browser used before (newest first).
 * @param {string} username
 * @returns {Promise<object | null>}
 */
export function loadKeys(username) {
  return store().loadKeys(username);
}

/**
 * Save (replace) the keys object of `username`; `keys.username` must equal it.
 * Resolves once the write has committed.
 * @param {string} username
 * @param {object} keys
 * @returns {Promise<void>}
 */
export function saveKeys(username, keys) {
  return store().saveKeys(username, keys);
}

/**
 * Forget the keys of `username` in this browser (the server's backup is untouched).
 * @param {string} username
 * @returns {Promise<void>}
 */
export function deleteKeys(username) {
  return store().deleteKeys(username);
}

/**
 * A named piece of `username`'s client state (pins, verification marks, a conversation's
 * chain, ...), or null. `name` is any string the owner module chooses, e.g. "pins" or
 * `chain:${conversationId}`.
 * @param {string} username
 * @param {string} name
 * @returns {Promise<any>}
 */
export function loadState(username, name) {
  return store().loadState(username, name);
}

/**
 * Save a structured-clone value (objects, arrays, Maps, Uint8Arrays, CryptoKeys; no
 * functions or class instances) as `username`'s state `name`.
 * @param {string} username
 * @param {string} name
 * @param {any} value
 * @returns {Promise<void>}
 */
export function saveState(username, name, value) {
  return store().saveState(username, name, value);
}

/**
 * Remove `username`'s state `name`.
 * @param {string} username
 * @param {string} name
 * @returns {Promise<void>}
 */
export function deleteState(username, name) {
  return store().deleteState(username, name);
}

/**
 * Ask the browser to keep this origin's storage under storage pressure, so the keys are
 * not evicted with caches. Best effort: browsers may refuse or not ask the user.
 * @returns {Promise<boolean>} whether storage is persistent
 */
export async function requestPersistentStorage() {
  try {
    const storage = globalThis.navigator?.storage;
    if (!storage?.persist) return false;
    return (await storage.persisted()) || (await storage.persist());
  } catch {
    return false;
  }
}
