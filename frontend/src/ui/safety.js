// Verification dialogs: the safety-number screen of one contact (with "mark as verified"),
// and the confirmation asked before sending to a verified contact whose key changed.
//
// The key-change dialog is the one alarm the UI raises on its own, and only for contacts
// the user verified: changes of unverified keys are accepted silently by the engine (the
// noise users of other messengers complain about), and surface only as a warning badge.

import { el, openDialog, setText, uniqueId } from "./dom.js";
import { displayName, errorText, fingerprintLines } from "./format.js";

/**
 * Open the safety-number dialog for one user.
 *
 * @param {object} ctx the app context (see app.js)
 * @param {string} username
 * @returns {{close: () => void}}
 */
export function openSafetyDialog(ctx, username) {
  const { session } = ctx;
  const name = displayName(session.state.users, username);
  const { body, close } = openDialog({
    host: ctx.host,
    title: `Verify ${name}`,
    testid: "safety-dialog",
    className: "safety-dialog",
    description: `Compare this number with the one ${name} sees for you, in person or on a call you trust. If they match, nobody is reading along.`,
  });
  const status = el("p", { class: "verify-status", role: "status" });
  const number = el("p", { class: "safety-number", "data-testid": "safety-number" }, "Computing…");
  const keys = el("div", { class: "key-compare" });
  const error = el("p", { class: "field-error", role: "alert" });
  const actions = el("div", { class: "dialog-actions" });
  body.append(status, number, keys, error, actions);

  const trustOf = () => {
    // The conversation-independent view of this user: any conversation's member list
    // carries the same pin, so take the first entry that names them.
    for (const conversation of session.state.conversations.values()) {
      let entries = [];
      try {
        entries = session.memberTrust(conversation.id) || [];
      } catch {
        entries = [];
      }
      if (Array.isArray(entries)) {
        const entry = entries.find((item) => item.username === username);
        if (entry) return entry;
      }
    }
    return { verified: Boolean(session.isVerified(username)), keyChanged: false };
  };

  const render = () => {
    const trust = trustOf();
    const verified = Boolean(session.isVerified(username)) && !trust.keyChanged;
    status.dataset.state = trust.keyChanged ? "changed" : verified ? "verified" : "unverified";
    setText(
      status,
      trust.keyChanged
        ? `${name}'s key changed since you verified it. Compare the new number before you trust it.`
        : verified
          ? `You verified ${name}.`
          : `You have not verified ${name} yet.`,
    );
    const buttons = [];
    if (!verified) {
      const mark = el(
        "button",
        { type: "button", class: "button button-primary", "data-testid": "mark-verified" },
        trust.keyChanged ? "Accept new key and mark as verified" : "Mark as verified",
      );
      mark.addEventListener("click", async () => {
        mark.disabled = true;
        setText(error, "");
        try {
          // Marking a changed key verified means accepting it first (protocol §5.5:
          // the user accepts a new key after comparing safety numbers).
          if (trust.keyChanged) await session.confirmKeyChange(username);
          await session.markVerified(username);
          render();
          ctx.refresh();
        } catch (failure) {
          mark.disabled = false;
          setText(error, `Could not mark as verified: ${errorText(failure)}`);
        }
      });
      buttons.push(
        el("button", { type: "button", class: "button", onclick: () => close() }, "Not now"),
        mark,
      );
    } else {
      const unmark = el(
        "button",
        { type: "button", class: "button button-danger-quiet" },
        "Remove verification",
      );
      unmark.addEventListener("click", async () => {
        unmark.disabled = true;
        try {
          await session.unmarkVerified(username);
          render();
          ctx.refresh();
        } catch (failure) {
          unmark.disabled = false;
          setText(error, `Could not remove the verification: ${errorText(failure)}`);
        }
      });
      buttons.push(
        unmark,
        el("button", { type: "button", class: "button button-primary", onclick: () => close() }, "Done"),
      );
    }
    actions.replaceChildren(...buttons);
    // Focus a safe choice when the dialog opens and when the clicked button was just
    // replaced (focus would otherwise fall back to the page behind the modal): "Not now"
    // before verifying (Enter must not verify unread numbers), "Done" after.
    if (!body.contains(document.activeElement)) (verified ? buttons[buttons.length - 1] : buttons[0]).focus();
  };

  render();
  (async () => {
    try {
      const answer = await session.safetyNumber(username);
      number.replaceChildren(...groups(answer.number));
      keys.replaceChildren(
        fingerprintBlock("Your key", answer.mine),
        fingerprintBlock(`${name}'s key`, answer.theirs),
      );
    } catch (failure) {
      setText(number, "—");
      setText(error, `Could not compute the safety number: ${errorText(failure)}`);
    }
  })();
  return { close };
}

/**
 * Ask before sending when verified contacts' keys changed. Shows each old and new
 * fingerprint; on "send anyway" confirms every change with the engine.
 *
 * @param {object} ctx the app context (see app.js)
 * @param {{username: string, oldFingerprint: string, newFingerprint: string}[]} changes
 * @returns {Promise<boolean>} true once every change is confirmed, false if the user declined
 */
export function confirmKeyChanges(ctx, changes) {
  const { session } = ctx;
  return new Promise((resolve) => {
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      resolve(value);
    };
    const names = changes.map((change) => displayName(session.state.users, change.username));
    const title = changes.length === 1 ? `${names[0]}'s key changed` : "Some keys changed";
    const { body, close } = openDialog({
      host: ctx.host,
      title,
      testid: "keychange-dialog",
      className: "keychange-dialog",
      description:
        "You verified this key before, and it is different now. That happens when someone reinstalls or sets up new keys, and also when someone tries to read along. Nothing was sent yet.",
      onClose: () => finish(false),
    });
    const error = el("p", { class: "field-error", role: "alert" });
    const cancel = el(
      "button",
      { type: "button", class: "button", "data-testid": "keychange-cancel", onclick: () => close() },
      "Don't send",
    );
    const confirm = el(
      "button",
      { type: "button", class: "button button-warning", "data-testid": "keychange-confirm" },
      changes.length === 1 ? "Accept new key and send" : "Accept new keys and send",
    );
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      try {
        for (const change of changes) await session.confirmKeyChange(change.username);
        finish(true);
        close();
      } catch (failure) {
        confirm.disabled = false;
        cancel.disabled = false;
        setText(error, `Could not accept the new key: ${errorText(failure)}`);
      }
    });
    body.append(
      el(
        "ul",
        { class: "keychange-list" },
        changes.map((change, i) =>
          el(
            "li",
            { class: "keychange" },
            el("h3", { class: "keychange-name" }, `${names[i]} (@${change.username})`),
            el(
              "div",
              { class: "key-compare" },
              fingerprintBlock("Key you verified", change.oldFingerprint, "old"),
              fingerprintBlock("New key", change.newFingerprint, "new"),
            ),
          ),
        ),
      ),
      el(
        "p",
        { class: "dialog-hint" },
        "If you are not sure, choose “Don't send” and compare safety numbers with them first (Members → Review key change).",
      ),
      error,
      el("div", { class: "dialog-actions" }, cancel, confirm),
    );
    cancel.focus();
  });
}

/**
 * The safety number as six groups (one element each, spaces kept so the text reads as
 * written: "12345 67890 …").
 * @param {string} number
 * @returns {(Node|string)[]}
 */
function groups(number) {
  const parts = String(number || "")
    .split(/\s+/)
    .filter(Boolean);
  return parts
    .flatMap((part, i) => [i ? " " : null, el("span", { class: "safety-group" }, part)])
    .filter(Boolean);
}

function fingerprintBlock(label, fingerprint, variant) {
  const id = uniqueId("fingerprint");
  const lines = fingerprintLines(fingerprint);
  return el(
    "div",
    { class: ["fingerprint-block", variant && `is-${variant}`], "data-variant": variant },
    el("span", { id, class: "fingerprint-label" }, label),
    el(
      "code",
      { class: "fingerprint", "aria-describedby": id },
      lines.length
        ? lines
            .flatMap((line, i) => [i ? " " : null, el("span", { class: "fingerprint-line" }, line)])
            .filter(Boolean)
        : "unknown",
    ),
  );
}
