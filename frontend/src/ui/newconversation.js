// The "new conversation" dialog: who (one or more usernames), an optional title, and who
// makes the keys — a choice that is fixed for the conversation's life (protocol §5.1), so
// each option carries one plain sentence about what it means.

import { el, openDialog, setText, uniqueId } from "./dom.js";
import { ORIGIN_SENTENCES, USERNAME_PATTERN, errorText, parseUsernames } from "./format.js";

/**
 * Open the dialog. Resolves once it closes.
 *
 * @param {object} ctx the app context (see app.js)
 * @param {{usernames?: string[]}} [options] usernames to start with
 * @returns {Promise<string|null>} the new conversation's id, or null if cancelled
 */
export function openNewConversationDialog(ctx, { usernames = [] } = {}) {
  const { session } = ctx;
  return new Promise((resolve) => {
    let createdId = null;
    const { body, close } = openDialog({
      host: ctx.host,
      title: "New conversation",
      testid: "newconv-dialog",
      className: "newconv-dialog",
      onClose: () => resolve(createdId),
    });

    const usersId = uniqueId("newconv-users");
    const usersHint = uniqueId("newconv-users-hint");
    const usersError = uniqueId("newconv-users-error");
    const titleId = uniqueId("newconv-title");
    const usersInput = el("input", {
      id: usersId,
      type: "text",
      class: "text-input",
      "data-testid": "newconv-usernames",
      value: usernames.join(", "),
      autocomplete: "off",
      autocapitalize: "none",
      spellcheck: "false",
      required: true,
      "aria-describedby": `${usersHint} ${usersError}`,
    });
    const errorText_ = el("p", { id: usersError, class: "field-error", role: "alert" });
    const titleInput = el("input", {
      id: titleId,
      type: "text",
      class: "text-input",
      "data-testid": "newconv-title",
      maxlength: "120",
      autocomplete: "off",
    });

    const originName = uniqueId("newconv-origin");
    const originLegend = uniqueId("newconv-origin-legend");
    const option = (value, label) => {
      const id = uniqueId(`newconv-origin-${value}`);
      const sentence = uniqueId(`newconv-origin-${value}-text`);
      return el(
        "div",
        { class: "choice" },
        el("input", {
          id,
          type: "radio",
          name: originName,
          value,
          class: "radio",
          "data-testid": `newconv-origin-${value}`,
          checked: value === "server",
          "aria-describedby": sentence,
        }),
        el(
          "div",
          { class: "choice-text" },
          el("label", { for: id, class: "choice-label" }, label),
          el("p", { id: sentence, class: "choice-sentence" }, ORIGIN_SENTENCES[value]),
        ),
      );
    };
    const submit = el(
      "button",
      { type: "submit", class: "button button-primary", "data-testid": "newconv-submit" },
      "Create conversation",
    );
    const form = el(
      "form",
      { class: "dialog-form", novalidate: true },
      el(
        "div",
        { class: "field" },
        el("label", { for: usersId, class: "field-label" }, "People"),
        el("p", { id: usersHint, class: "field-hint" }, "Usernames, separated by commas or spaces."),
        usersInput,
        errorText_,
      ),
      el(
        "div",
        { class: "field" },
        el(
          "label",
          { for: titleId, class: "field-label" },
          "Title ",
          el("span", { class: "optional" }, "(optional)"),
        ),
        titleInput,
      ),
      el(
        "fieldset",
        { class: "field choices", "aria-describedby": `${originLegend}-note` },
        el("legend", { id: originLegend, class: "field-label" }, "Who makes the encryption keys"),
        option("server", "The server"),
        option("members", "Members only"),
        el("p", { id: `${originLegend}-note`, class: "field-hint" }, "This cannot be changed later."),
      ),
      el(
        "div",
        { class: "dialog-actions" },
        el("button", { type: "button", class: "button", onclick: () => close() }, "Cancel"),
        submit,
      ),
    );

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const names = parseUsernames(usersInput.value).filter((name) => name !== session.me);
      const invalid = names.filter((name) => !USERNAME_PATTERN.test(name));
      let problem = "";
      if (names.length === 0) problem = "Enter at least one username (other than yours).";
      else if (invalid.length) problem = `Not a valid username: ${invalid.join(", ")}`;
      else if (names.length > 50) problem = "At most 50 people at once; invite more afterwards.";
      if (problem) {
        setText(errorText_, problem);
        usersInput.setAttribute("aria-invalid", "true");
        usersInput.focus();
        return;
      }
      usersInput.removeAttribute("aria-invalid");
      setText(errorText_, "");
      const keyOrigin = form.querySelector(`input[name="${originName}"]:checked`)?.value || "server";
      submit.disabled = true;
      setText(submit, "Creating…");
      try {
        createdId = await session.createConversation(names, { title: titleInput.value.trim(), keyOrigin });
        close();
      } catch (error) {
        submit.disabled = false;
        setText(submit, "Create conversation");
        setText(errorText_, errorText(error, "Could not create the conversation."));
      }
    });

    body.append(form);
    (usernames.length ? titleInput : usersInput).focus();
  });
}
