// The key set-up screen: what keys/setup.js asks the user, and its progress.
// Built with DOM APIs only (text through textContent, never innerHTML; no inline styles:
// every look comes from styles/keysetup.css), so nothing the server sends can become markup.

import { fingerprint } from "../crypto/fingerprints.js";

/** Signing algorithms offered, in order; `name` is the protocol's algorithm name. */
export const ALGORITHM_CHOICES = Object.freeze([
  {
    name: "ed25519",
    label: "Ed25519 (recommended)",
    hint: "Fast, with small keys and signatures, and no parameters to get wrong.",
  },
  {
    name: "ecdsa-p256",
    label: "ECDSA P-256",
    hint: "The NIST curve, for organisations that require it.",
  },
  {
    name: "rsa-pss",
    label: "RSA-PSS 3072",
    hint: "Large keys and signatures, for organisations that require RSA.",
  },
  {
    name: "dsa",
    label: "DSA 2048",
    hint:
      "Legacy. Browsers have no built-in DSA, so this private key is kept readable by this " +
      "site's scripts in this browser instead of locked inside the browser's crypto.",
  },
]);

/** Where the backup's key comes from, with what each protects against. */
export const PROTECTOR_CHOICES = Object.freeze([
  {
    name: "login-password",
    testid: "protector-login",
    label: "My login password",
    hint:
      "Nothing new to remember, and a copy of the backup is useless without your password; " +
      "but the server sees your login password at every login, so a compromised server could open it.",
  },
  {
    name: "passphrase",
    testid: "protector-passphrase",
    label: "A separate backup passphrase",
    hint:
      "The server never sees it, so even a compromised server could only guess it offline, " +
      "at 600,000 key-derivation rounds per guess; if you forget it, the backup cannot be opened.",
  },
]);

/** Shortest separate backup passphrase accepted. */
export const MIN_PASSPHRASE_LENGTH = 8;

/**
 * Build the key set-up screen inside `root` and return what keys/setup.js's ensureKeys
 * needs as its `ui`.
 * @param {HTMLElement} root
 * @param {{username?: string}} [options] the logged-in user (default: `root.dataset.username`),
 *   given to password managers so they file the login password under the right account
 * @returns {{chooseAlgorithmAndProtector: () => Promise<{algorithm: string,
 *   protector: string, passphrase: string}>,
 *   askBackupPassphrase: (options: {protector: string, error?: string | null}) => Promise<string | null>,
 *   progress: (steps: Array<{id: string, label: string}>, current: number) => void,
 *   fail: (message: string) => void, warn: (message: string) => void,
 *   done: () => void, element: HTMLElement}}
 */
export function createKeySetupUi(root, { username = root.dataset?.username ?? "" } = {}) {
  const doc = root.ownerDocument;
  let counter = 0;
  const uid = (name) => `keysetup-${name}-${(counter += 1)}`;

  function el(tag, attributes = {}, ...children) {
    const node = doc.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "testid") node.dataset.testid = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  const title = el("h1", { className: "keysetup-title", id: uid("title"), text: "Your keys" });
  const intro = el("p", {
    className: "keysetup-intro",
    text:
      "SecureChat encrypts and signs your messages with keys that are made and kept in this " +
      "browser. The server only certifies their public halves and keeps an encrypted backup.",
  });
  const notices = el("div", { className: "keysetup-notices", role: "status", testid: "keysetup-notices" });
  const body = el("div", { className: "keysetup-body" });
  const section = el(
    "section",
    { className: "keysetup", testid: "keysetup", "aria-labelledby": title.id },
    title,
    intro,
    notices,
    body,
  );
  // Attached on first use: a user whose stored keys are fine never sees the screen flash.
  const mount = () => {
    if (!section.isConnected) {
      root.querySelector(":scope > .loading")?.remove(); // the screen replaces the page's "Loading…" line
      root.append(section);
    }
  };

  let progressView = null;

  function show(...nodes) {
    mount();
    progressView = null;
    body.replaceChildren(...nodes);
  }

  function errorLine(testid = "keysetup-error") {
    // role=alert: a refusal is announced as soon as its text is set.
    return el("p", { className: "keysetup-error", role: "alert", id: uid("error"), testid, hidden: true });
  }

  function setError(line, message, fields = []) {
    line.textContent = message ?? "";
    line.hidden = !message;
    for (const field of fields) {
      if (message) {
        field.setAttribute("aria-invalid", "true");
        field.setAttribute("aria-describedby", line.id);
      } else {
        field.removeAttribute("aria-invalid");
        field.removeAttribute("aria-describedby");
      }
    }
  }

  function radioGroup(legend, name, choices, checked) {
    const fieldset = el("fieldset", { className: "keysetup-fieldset" }, el("legend", { text: legend }));
    const inputs = [];
    for (const choice of choices) {
      const inputId = uid(choice.name);
      const hintId = uid(`${choice.name}-hint`);
      const input = el("input", {
        type: "radio",
        name,
        value: choice.name,
        id: inputId,
        testid: choice.testid ?? `algorithm-${choice.name}`,
        "aria-describedby": hintId,
        checked: choice.name === checked,
      });
      inputs.push(input);
      fieldset.append(
        el(
          "div",
          { className: "keysetup-choice" },
          input,
          el("label", { for: inputId, text: choice.label }),
          el("p", { className: "keysetup-hint", id: hintId, text: choice.hint }),
        ),
      );
    }
    return { fieldset, inputs, value: () => inputs.find((input) => input.checked)?.value };
  }

  // A password form names its account for password managers (an invisible, read-only
  // username field), so the login password they offer is this user's.
  function accountField() {
    if (!username) return null;
    return el("input", { type: "text", autocomplete: "username", value: username, readonly: true, hidden: true });
  }

  function passwordField(labelText, testid, autocomplete) {
    const id = uid(testid);
    const label = el("label", { for: id, text: labelText });
    const input = el("input", {
      type: "password",
      id,
      testid,
      autocomplete,
      required: true,
      spellcheck: "false",
      autocapitalize: "off",
    });
    return { wrapper: el("div", { className: "keysetup-field" }, label, input), label, input };
  }

  /**
   * Ask which signing algorithm to generate and what protects the backup, with that
   * password twice. Resolves on a valid submit (Enter or the button).
   */
  function chooseAlgorithmAndProtector() {
    return new Promise((resolve) => {
      const algorithms = radioGroup("Signing key algorithm", uid("algorithm"), ALGORITHM_CHOICES, "ed25519");
      const protectors = radioGroup(
        "Protect the backup of your keys with",
        uid("protector"),
        PROTECTOR_CHOICES,
        "login-password",
      );
      const first = passwordField("", "backup-passphrase", "current-password");
      const second = passwordField("", "backup-passphrase-confirm", "current-password");
      const error = errorLine();
      const submit = el("button", {
        type: "submit",
        className: "keysetup-button keysetup-button-primary",
        testid: "keysetup-submit",
        text: "Create my keys",
      });
      const form = el(
        "form",
        { className: "keysetup-form", novalidate: true, "aria-labelledby": title.id },
        el("h2", { className: "keysetup-subtitle", text: "Create your keys" }),
        accountField(),
        algorithms.fieldset,
        protectors.fieldset,
        first.wrapper,
        second.wrapper,
        error,
        el("div", { className: "keysetup-actions" }, submit),
      );

      // The password fields say which secret they want; a password manager may fill the
      // login password, and offers to generate a new one for a separate passphrase.
      const relabel = () => {
        const separate = protectors.value() === "passphrase";
        first.label.textContent = separate
          ? `Backup passphrase (at least ${MIN_PASSPHRASE_LENGTH} characters)`
          : "Your login password";
        second.label.textContent = separate ? "Backup passphrase again" : "Your login password again";
        for (const field of [first.input, second.input]) {
          field.setAttribute("autocomplete", separate ? "new-password" : "current-password");
        }
        if (separate) first.input.setAttribute("minlength", String(MIN_PASSPHRASE_LENGTH));
        else first.input.removeAttribute("minlength");
        setError(error, null, [first.input, second.input]);
      };
      for (const input of protectors.inputs) input.addEventListener("change", relabel);
      relabel();

      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const separate = protectors.value() === "passphrase";
        const passphrase = first.input.value;
        let problem = null;
        let field = first.input;
        if (passphrase === "") {
          problem = separate ? "Choose a backup passphrase." : "Enter your login password.";
        } else if (separate && [...passphrase].length < MIN_PASSPHRASE_LENGTH) {
          problem = `The backup passphrase needs at least ${MIN_PASSPHRASE_LENGTH} characters.`;
        } else if (second.input.value !== passphrase) {
          problem = "The two entries differ; type the same in both.";
          field = second.input;
        }
        if (problem) {
          setError(error, problem, [first.input, second.input]);
          field.focus();
          return;
        }
        setError(error, null, [first.input, second.input]);
        submit.disabled = true;
        resolve({ algorithm: algorithms.value(), protector: protectors.value(), passphrase });
      });

      show(form);
      algorithms.inputs.find((input) => input.checked).focus();
    });
  }

  /**
   * Ask for the password that opens the server's backup. Resolves with it, or with null
   * when the user chooses to make new keys instead.
   * @param {{protector: string, error?: string | null}} options `error`: why the last
   *   try failed (shown, and the field is cleared)
   */
  function askBackupPassphrase({ protector, error: previousError = null }) {
    return new Promise((resolve) => {
      const login = protector === "login-password";
      const secret = login ? "login password" : "backup passphrase";
      const field = passwordField(
        login ? "Your login password" : "Your backup passphrase",
        "restore-passphrase",
        "current-password",
      );
      const error = errorLine();
      const submit = el("button", {
        type: "submit",
        className: "keysetup-button keysetup-button-primary",
        testid: "restore-submit",
        text: "Restore my keys",
      });
      const warning = el("p", {
        className: "keysetup-warning",
        id: uid("new-keys-warning"),
        hidden: true,
        text:
          "New keys replace the backed-up ones: messages encrypted to your old keys cannot be " +
          "read in this browser, and your contacts will see that your keys changed.",
      });
      const newKeys = el("button", {
        type: "button",
        className: "keysetup-button keysetup-button-secondary",
        testid: "restore-new-keys",
        text: `I cannot remember my ${secret}: make new keys`,
      });
      const form = el(
        "form",
        { className: "keysetup-form", novalidate: true, "aria-labelledby": title.id },
        el("h2", { className: "keysetup-subtitle", text: "Restore your keys" }),
        el("p", {
          className: "keysetup-intro",
          text: `Your keys are backed up on the server, encrypted with your ${secret}. Enter it to restore them in this browser.`,
        }),
        accountField(),
        field.wrapper,
        error,
        el("div", { className: "keysetup-actions" }, submit, newKeys),
        warning,
      );

      let confirmingNewKeys = false;
      newKeys.addEventListener("click", () => {
        // Two steps: the first click explains what is lost, the second confirms.
        if (!confirmingNewKeys) {
          confirmingNewKeys = true;
          warning.hidden = false;
          newKeys.textContent = "Make new keys anyway";
          newKeys.setAttribute("aria-describedby", warning.id);
          return;
        }
        newKeys.disabled = submit.disabled = true;
        resolve(null);
      });
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (field.input.value === "") {
          setError(error, `Enter your ${secret}.`, [field.input]);
          field.input.focus();
          return;
        }
        setError(error, null, [field.input]);
        submit.disabled = newKeys.disabled = true;
        resolve(field.input.value);
      });

      show(form);
      if (previousError) setError(error, previousError, [field.input]);
      field.input.focus();
    });
  }

  /**
   * Show `steps` with the first `current` done and step `current` running;
   * `current === steps.length` means all done.
   * @param {Array<{id: string, label: string}>} steps
   * @param {number} current
   */
  function progress(steps, current) {
    if (!progressView || progressView.steps !== steps) {
      const list = el("ol", { className: "keysetup-progress", testid: "keysetup-progress" });
      const status = el("p", { className: "keysetup-status", role: "status", "aria-live": "polite" });
      const items = steps.map((step) => {
        const state = el("span", { className: "keysetup-sr-only" });
        const item = el("li", { className: "keysetup-step", "data-step": step.id }, el("span", { text: step.label }), state);
        list.append(item);
        return { item, state };
      });
      const container = el(
        "div",
        { className: "keysetup-working" },
        el("h2", { className: "keysetup-subtitle", text: "Setting up your keys" }),
        list,
        status,
      );
      show(container);
      progressView = { steps, list, status, items, current: -1 };
    }
    const view = progressView;
    view.current = current;
    view.items.forEach(({ item, state }, index) => {
      const phase = index < current ? "done" : index === current ? "current" : "pending";
      item.className = `keysetup-step is-${phase}`;
      if (phase === "current") item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
      state.textContent = phase === "done" ? " (done)" : phase === "current" ? " (in progress)" : "";
    });
    view.list.setAttribute("aria-busy", String(current < steps.length));
    view.status.textContent =
      current < steps.length
        ? `Step ${current + 1} of ${steps.length}: ${steps[current].label}…`
        : "Your keys are ready.";
  }

  /**
   * Show why set-up stopped, with a way to start again.
   * @param {string} message a sentence for people (never secrets)
   */
  function fail(message) {
    const retry = el("button", {
      type: "button",
      className: "keysetup-button keysetup-button-primary",
      testid: "keysetup-retry",
      text: "Reload and try again",
    });
    retry.addEventListener("click", () => doc.defaultView?.location.reload());
    const failure = el(
      "div",
      { className: "keysetup-failure" },
      el("p", { className: "keysetup-error", role: "alert", testid: "keysetup-error", text: message }),
      el("div", { className: "keysetup-actions" }, retry),
    );
    if (progressView) {
      // Keep the list: which step failed is useful; mark it.
      const { items, current, list } = progressView;
      items[current]?.item.classList.replace("is-current", "is-failed");
      if (items[current]) items[current].state.textContent = " (failed)";
      list.setAttribute("aria-busy", "false");
      body.append(failure);
    } else {
      show(failure);
    }
    retry.focus();
  }

  /**
   * A note that does not stop set-up (a backup that could not be saved, keys that had
   * been revoked, ...).
   * @param {string} message
   */
  function warn(message) {
    mount();
    notices.append(el("p", { className: "keysetup-notice", testid: "keysetup-notice", text: message }));
  }

  /** Remove the screen (the chat takes over `root`). */
  function done() {
    section.remove();
  }

  return { chooseAlgorithmAndProtector, askBackupPassphrase, progress, fail, warn, done, element: section };
}

/**
 * Key details for an info panel: algorithm, fingerprint, serial, expiry, and where the
 * private key lives (a non-extractable CryptoKey, or for DSA a value this site's scripts
 * can read).
 * @param {Document} doc
 * @param {object} keys the keys object from keys/setup.js
 * @returns {Promise<HTMLElement>} a `<dl class="keysetup-details">`
 */
export async function renderKeyDetails(doc, keys) {
  const list = doc.createElement("dl");
  list.className = "keysetup-details";
  list.dataset.testid = "key-details";
  const add = (term, value) => {
    const dt = doc.createElement("dt");
    dt.textContent = term;
    const dd = doc.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  };
  const storage = (privateKey) =>
    typeof globalThis.CryptoKey === "function" && privateKey instanceof globalThis.CryptoKey
      ? privateKey.extractable
        ? "in this browser (extractable)"
        : "in this browser, not extractable: scripts can use it but not copy it"
      : "in this browser as plain data (WebCrypto has no DSA), readable by this site's scripts";
  for (const [kind, pair, algorithm] of [
    ["Signing", keys.signing, keys.signing.algorithm],
    ["Encryption", keys.encryption, "rsa-oaep"],
  ]) {
    add(`${kind} algorithm`, algorithm);
    add(`${kind} fingerprint`, await fingerprint(pair.spki));
    const until = pair.certificate?.not_after ? `, valid until ${pair.certificate.not_after.slice(0, 10)}` : "";
    add(`${kind} certificate`, `serial ${pair.serial}${until}`);
    add(`${kind} private key`, storage(pair.privateKey));
  }
  return list;
}
