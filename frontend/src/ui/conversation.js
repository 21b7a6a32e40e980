// The open conversation (the page's `main` landmark, or a labelled region when the page
// already mounts the app inside a `<main>`): header (title, verification state,
// members, invite, leave), the message log, the typing indicator and the composer.
//
// The message list is keyed by `message.key` and updated in place, so a message never
// jumps or flickers when its delivery count or status changes, and the log (a polite live
// region) only announces messages that are really new. Switching conversation builds a
// fresh list before it enters the page, so opening a long history is not read out.

import { el, openDialog, setText, syncKeyed, uniqueId } from "./dom.js";
import {
  avatarHue,
  badgeFor,
  conversationTitle,
  deliveryText,
  displayName,
  errorText,
  formatTime,
  initial,
  originText,
  reasonText,
  timeTooltip,
  trustText,
  typingText,
} from "./format.js";
import { createMembersPanel } from "./members.js";
import { openInspector } from "./inspector.js";
import { confirmKeyChanges } from "./safety.js";

const TYPING_THROTTLE_MS = 3000;
const NEAR_BOTTOM_PX = 80;

/**
 * Build the conversation pane.
 *
 * @param {object} ctx the app context (see app.js)
 * @returns {{element: HTMLElement, show: (id: string|null) => void, update: (what?: string) => void,
 *   closePanel: () => boolean, focusComposer: () => void}}
 */
export function createConversationView(ctx) {
  const { session } = ctx;
  const element = el(ctx.insideMain ? "section" : "main", { class: "conversation-pane", id: "sc-main" });

  let view = null; // the parts of the open conversation, or null for the empty state
  let currentId = null;

  const showEmpty = () => {
    const headingId = uniqueId("empty");
    element.setAttribute("aria-labelledby", headingId);
    element.replaceChildren(
      el(
        "div",
        { class: "empty-state" },
        el("h2", { id: headingId, class: "empty-title" }, "No conversation open"),
        el(
          "p",
          { class: "empty-text" },
          "Pick a conversation from the list, or start a new one. Messages are encrypted on this device before they leave it.",
        ),
        el(
          "div",
          { class: "empty-actions" },
          el(
            "button",
            { type: "button", class: "button button-primary", onclick: () => ctx.openNewConversation([]) },
            "Start a conversation",
          ),
          // On a phone the list is folded away: offer it here too.
          el(
            "button",
            { type: "button", class: "button narrow-only", onclick: () => ctx.openSidebar() },
            "Show conversations",
          ),
        ),
      ),
    );
  };

  const show = (id) => {
    if (view) view.destroy();
    view = null;
    currentId = id;
    const conversation = id ? session.state.conversations.get(id) : null;
    if (!conversation) {
      currentId = null;
      showEmpty();
      return;
    }
    view = buildView(ctx, conversation);
    element.setAttribute("aria-labelledby", view.titleId);
    element.replaceChildren(...view.parts);
    view.update();
    view.scrollToBottom();
  };

  show(null);

  return {
    element,
    show,
    update(what) {
      if (!currentId) return;
      const conversation = session.state.conversations.get(currentId);
      if (!conversation) {
        show(null);
        return;
      }
      if (view) view.update(what);
    },
    closePanel() {
      return view ? view.closePanel() : false;
    },
    focusComposer() {
      if (view) view.composer.focus();
    },
  };
}

/**
 * The parts of one open conversation.
 */
function buildView(ctx, initialConversation) {
  const { session } = ctx;
  const id = initialConversation.id;
  const conversation = () => session.state.conversations.get(id);

  // --- header ------------------------------------------------------------------------
  const titleId = uniqueId("conversation-title");
  const title = el("h2", { id: titleId, class: "conversation-title", "data-testid": "conversation-title" });
  const subtitle = el("p", { class: "conversation-subtitle" });
  const trustLabel = el("span", { class: "trust-label" });
  const trust = el(
    "button",
    {
      type: "button",
      class: "trust-pill",
      "data-testid": "conversation-trust",
      onclick: () => togglePanel(true),
    },
    el("span", { class: "trust-icon", "aria-hidden": "true" }),
    trustLabel,
  );
  const memberCount = el("span", { class: "button-count" });
  const panelId = uniqueId("members-panel");
  const membersButton = el(
    "button",
    {
      type: "button",
      class: "button",
      "data-testid": "members-button",
      "aria-expanded": "false",
      "aria-controls": panelId,
      onclick: () => togglePanel(),
    },
    "Members ",
    memberCount,
  );
  const inviteButton = el(
    "button",
    { type: "button", class: "button", onclick: () => openInviteDialog(ctx, id) },
    "Invite",
  );
  const leaveButton = el(
    "button",
    {
      type: "button",
      class: "button button-danger-quiet",
      "data-testid": "leave",
      onclick: async () => {
        leaveButton.disabled = true;
        try {
          await ctx.leaveConversation(id);
        } catch (error) {
          leaveButton.disabled = false;
          ctx.notify("error", `Could not leave: ${errorText(error)}`);
        }
      },
    },
    "Leave",
  );
  const header = el(
    "header",
    { class: "conversation-header" },
    el(
      "div",
      { class: "conversation-heading" },
      title,
      el("div", { class: "conversation-facts" }, subtitle, trust),
    ),
    el("div", { class: "conversation-actions" }, membersButton, inviteButton, leaveButton),
  );

  const pendingNotice = el("p", { class: "inline-notice", role: "status", hidden: true });

  // A message request: started by someone who is not a mutual contact. The messages are
  // readable (as in Signal), but no presence flows until I accept; or I leave and block.
  const requestText = el("p", { class: "request-text" });
  const acceptRequest = el(
    "button",
    {
      type: "button",
      class: "button button-primary",
      "data-testid": "request-accept",
      onclick: () => session.acceptRequest(id).catch((error) => ctx.notify?.("error", error.message)),
    },
    "Accept",
  );
  const blockRequest = el(
    "button",
    {
      type: "button",
      class: "button button-danger-quiet",
      "data-testid": "request-block",
      onclick: () =>
        session.declineRequest(id, { block: true }).catch((error) => ctx.notify?.("error", error.message)),
    },
    "Leave and block",
  );
  const requestNotice = el(
    "div",
    { class: "inline-notice request-notice", role: "region", "aria-label": "Message request", "data-testid": "request-notice", hidden: true },
    requestText,
    el("div", { class: "request-actions" }, acceptRequest, blockRequest),
  );

  // --- messages ----------------------------------------------------------------------
  // The log (a polite live region) wraps a plain list, so screen readers get both: new
  // messages read out, and "list, 12 items" when browsing.
  const list = el("ol", { class: "message-items" });
  const log = el(
    "div",
    {
      class: "message-list",
      "data-testid": "message-list",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-label": "Messages",
    },
    list,
  );
  const emptyList = el(
    "p",
    { class: "message-list-empty" },
    "No messages yet. Say hello — only the members can read it.",
  );
  // Focusable so keyboard users can scroll the history (axe: scrollable-region-focusable).
  const scroller = el(
    "div",
    { class: "message-scroller", role: "region", tabindex: "0", "aria-label": "Message history" },
    emptyList,
    log,
  );
  const jump = el(
    "button",
    { type: "button", class: "jump-latest", hidden: true, onclick: () => scrollToBottom(true) },
    "New messages ↓",
  );

  // --- members panel -----------------------------------------------------------------
  let panel = null;
  const body = el(
    "div",
    { class: "conversation-body" },
    el("div", { class: "message-column" }, scroller, jump),
  );

  const togglePanel = (forceOpen) => {
    if (panel && forceOpen !== true) {
      closePanel();
      return;
    }
    if (!panel) {
      panel = createMembersPanel(ctx, id, { id: panelId, onClose: () => closePanel() });
      body.append(panel.element);
      membersButton.setAttribute("aria-expanded", "true");
    }
    panel.focus();
  };
  const closePanel = () => {
    if (!panel) return false;
    const hadFocus = panel.element.contains(document.activeElement);
    panel.element.remove();
    panel = null;
    membersButton.setAttribute("aria-expanded", "false");
    if (hadFocus) membersButton.focus();
    return true;
  };

  // --- typing + composer -------------------------------------------------------------
  const typing = el("p", { class: "typing-indicator", "data-testid": "typing-indicator", hidden: true });
  let typingTimer = null;
  const composerId = uniqueId("composer");
  const composer = el("textarea", {
    id: composerId,
    class: "composer-input",
    "data-testid": "composer",
    rows: "1",
    placeholder: "Write a message",
    "aria-describedby": `${composerId}-hint`,
  });
  const sendButton = el(
    "button",
    { type: "submit", class: "button button-primary send-button", "data-testid": "send" },
    "Send",
  );
  const form = el(
    "form",
    { class: "composer", "aria-label": "Write a message" },
    el("label", { for: composerId, class: "sr-only" }, "Message"),
    composer,
    sendButton,
    el("p", { id: `${composerId}-hint`, class: "sr-only" }, "Enter sends, Shift+Enter starts a new line."),
  );
  const footer = el(
    "div",
    { class: "conversation-footer" },
    el("div", { class: "typing-slot" }, typing),
    form,
  );

  let lastTypingSent = 0;
  composer.addEventListener("input", () => {
    if (!composer.value.trim()) return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_THROTTLE_MS) return;
    lastTypingSent = now;
    try {
      session.sendTyping(id);
    } catch {
      // Typing is best effort: a closed socket must not disturb writing.
    }
  });
  composer.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line; an Enter that confirms an IME composition
    // (Japanese, Chinese input) must not send half a word.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = composer.value;
    if (!text.trim()) return;
    composer.value = "";
    lastTypingSent = 0;
    stickToBottom = true;
    sendText(text);
  });

  const sendText = async (text) => {
    try {
      await session.send(id, text);
    } catch (error) {
      if (error && error.code === "key_change_unconfirmed" && Array.isArray(error.changes)) {
        const confirmed = await confirmKeyChanges(ctx, error.changes);
        if (confirmed) {
          sendText(text);
          return;
        }
        restoreDraft(text);
        return;
      }
      // A message the engine took stays in the list as failed, with its reason: nothing
      // more to say. If it refused before taking it, say why and give the text back.
      const kept = (conversation()?.messages || []).some(
        (message) => message.mine && message.order === null && message.text === text,
      );
      if (!kept) {
        ctx.notify("error", `Message not sent: ${errorText(error)}`);
        restoreDraft(text);
      }
    }
  };
  const restoreDraft = (text) => {
    if (!composer.isConnected) return;
    composer.value = composer.value ? `${text}\n${composer.value}` : text;
    composer.focus();
  };

  // --- scrolling ---------------------------------------------------------------------
  let stickToBottom = true;
  scroller.addEventListener("scroll", () => {
    stickToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    if (stickToBottom) jump.hidden = true;
  });
  const scrollToBottom = (smooth = false) => {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth ? "smooth" : "instant" });
    stickToBottom = true;
    jump.hidden = true;
  };

  // --- rendering ---------------------------------------------------------------------
  const renderHeader = (conv) => {
    setText(title, conversationTitle(conv, session.me));
    const count = conv.members.length;
    setText(subtitle, `${count} ${count === 1 ? "member" : "members"} · ${originText(conv.keyOrigin)}`);
    const state = conv.trust || "unverified";
    trust.dataset.trust = state;
    setText(trustLabel, trustText(state));
    setText(memberCount, String(count));
    const maker = conv.keyOrigin === "members" ? "a member's device" : "the server";
    setText(pendingNotice, `Waiting for ${maker} to make the new key: messages are sent once it arrives.`);
    pendingNotice.hidden = !conv.epochPending;
    const request = conv.request;
    requestNotice.hidden = !request;
    if (request) {
      setText(
        requestText,
        `${conv.createdBy} started this conversation and is not one of your mutual contacts. ` +
          "They do not see whether you are online until you accept.",
      );
    }
  };

  const renderMessages = (conv) => {
    const before = list.childElementCount;
    const wasAtBottom = stickToBottom;
    syncKeyed(
      list,
      conv.messages,
      (message) => message.key,
      (message) => createMessage(ctx, id, message),
      (node, message) => updateMessage(node, message, session),
    );
    emptyList.hidden = conv.messages.length > 0;
    if (wasAtBottom) scrollToBottom();
    else if (list.childElementCount > before) jump.hidden = false;
  };

  const renderTyping = (conv) => {
    const names = (conv.typing || [])
      .filter((username) => username !== session.me)
      .map((username) => displayName(session.state.users, username));
    const text = typingText(names);
    setText(typing, text);
    typing.hidden = text === "";
    // The engine expires typers; re-read while someone is shown in case the expiry
    // arrives without an event of its own.
    clearTimeout(typingTimer);
    if (text) {
      typingTimer = setTimeout(() => {
        const current = conversation();
        if (current) renderTyping(current);
      }, 1000);
    }
  };

  const update = (what) => {
    const conv = conversation();
    if (!conv) return;
    if (!what || what === "conversation" || what === "conversations" || what === "users") {
      renderHeader(conv);
      renderMessages(conv);
      if (panel) panel.update();
    }
    renderTyping(conv);
  };

  return {
    titleId,
    parts: [header, requestNotice, pendingNotice, body, footer],
    composer,
    update,
    scrollToBottom,
    closePanel,
    destroy() {
      clearTimeout(typingTimer);
    },
  };
}

// --- one message ---------------------------------------------------------------------

function createMessage(ctx, conversationId, message) {
  const avatar = el("span", { class: "avatar", "aria-hidden": "true" });
  const sender = el("span", { class: "message-sender" });
  const time = el("time", { class: "message-time" });
  const head = el("div", { class: "message-head" }, sender, time);
  const text = el("div", { class: "message-text", "data-testid": "message-text" });
  const reason = el("p", { class: "message-reason", hidden: true });
  const delivery = el("span", { class: "message-delivery", "data-testid": "message-delivery" });
  const inspect = el(
    "button",
    {
      type: "button",
      class: "inspect-button",
      "data-testid": "inspect",
      onclick: () => openInspector(ctx, conversationId, message.key),
    },
    "Inspect",
  );
  // Sender, time, badge and delivery on one line, the inspect button at its end: the
  // text below stays the main thing, and a message costs two lines, not four.
  const foot = el("span", { class: "message-tools" }, inspect);
  head.append(foot);
  const node = el(
    "li",
    { class: "message", "data-testid": "message", "data-key": message.key },
    avatar,
    el("div", { class: "message-main" }, head, text, reason),
  );
  Object.assign(node, {
    _avatar: avatar,
    _sender: sender,
    _time: time,
    _head: head,
    _text: text,
    _reason: reason,
    _delivery: delivery,
    _foot: foot,
    _inspect: inspect,
    _badge: null,
    _signature: "",
  });
  return node;
}

function updateMessage(node, message, session) {
  // A gap marker (messages from before I joined) has no sender.
  const name = message.mine
    ? "You"
    : message.sender
      ? displayName(session.state.users, message.sender)
      : "Earlier messages";
  // Skip untouched messages: a long history re-renders on every delivery receipt.
  const signature = JSON.stringify([
    name,
    message.text,
    message.status,
    message.problem,
    message.signer,
    message.delivery,
    message.order,
    message.sentAt,
    message.timestampMs,
  ]);
  if (signature === node._signature) return;
  node._signature = signature;

  node.dataset.status = message.status || "ok";
  node.dataset.sender = message.sender;
  node.dataset.order = message.order === null || message.order === undefined ? "" : String(message.order);
  node.dataset.problem = message.problem ? message.problem.code : "";
  node.classList.toggle("is-mine", Boolean(message.mine));
  node.classList.toggle("is-failed", message.status === "failed");
  node.classList.toggle("is-pending", message.status === "sending" || message.status === "retrying");

  setText(node._avatar, initial(name === "You" ? session.me : name));
  node._avatar.dataset.hue = String(avatarHue(message.sender));
  setText(node._sender, name);
  const shortTime = formatTime(message.timestampMs);
  setText(node._time, shortTime);
  if (Number.isFinite(message.timestampMs))
    node._time.setAttribute("datetime", new Date(message.timestampMs).toISOString());
  node._time.title = timeTooltip(message);

  // The badge: only when something is worth saying (see badgeFor).
  const badge = badgeFor(message);
  if (badge) {
    if (!node._badge) {
      node._badge = el("span", { class: "badge", "data-testid": "message-badge" });
      node._time.after(node._badge);
    }
    node._badge.dataset.level = badge.level;
    node._badge.dataset.kind = badge.kind;
    setText(node._badge, badge.label);
  } else if (node._badge) {
    node._badge.remove();
    node._badge = null;
  }

  if (message.text === null || message.text === undefined) {
    node._text.classList.add("is-unreadable");
    setText(
      node._text,
      message.status === "retrying" ? "Not readable yet" : "This message could not be opened",
    );
  } else {
    node._text.classList.remove("is-unreadable");
    setText(node._text, message.text);
  }

  const why = message.problem ? reasonText(message.problem) : "";
  setText(node._reason, why);
  node._reason.hidden = why === "";
  node._reason.dataset.level = message.status === "retrying" ? "info" : "error";

  if (message.mine) {
    setText(node._delivery, deliveryText(message));
    node._delivery.dataset.state =
      message.status === "failed" ? "failed" : message.delivery?.state || "sending";
    if (!node._delivery.isConnected) node._foot.before(node._delivery);
  } else if (node._delivery.isConnected) {
    node._delivery.remove();
  }
  node._inspect.setAttribute(
    "aria-label",
    `Inspect message from ${name}${shortTime ? ` at ${shortTime}` : ""}`,
  );
}

// --- invite dialog -------------------------------------------------------------------

function openInviteDialog(ctx, conversationId) {
  const { session } = ctx;
  const conv = session.state.conversations.get(conversationId);
  if (!conv) return;
  const members = new Set(conv.members.map((member) => member.username));
  const inputId = uniqueId("invite-name");
  const listId = uniqueId("invite-suggestions");
  const errorId = uniqueId("invite-error");
  const input = el("input", {
    id: inputId,
    type: "text",
    class: "text-input",
    list: listId,
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": errorId,
  });
  const suggestions = el(
    "datalist",
    { id: listId },
    [...session.state.users.values()]
      .filter((user) => !members.has(user.username) && user.username !== session.me)
      .map((user) => el("option", { value: user.username }, user.displayName || user.username)),
  );
  const error = el("p", { id: errorId, class: "field-error", role: "alert" });
  const submit = el("button", { type: "submit", class: "button button-primary" }, "Send invitation");
  const { body, close } = openDialog({
    host: ctx.host,
    title: `Invite to ${conversationTitle(conv, session.me)}`,
    testid: "invite-dialog",
    description: "They join once they accept. You can also use Invite next to a person in the Online list.",
  });
  const form = el(
    "form",
    { class: "dialog-form" },
    el(
      "div",
      { class: "field" },
      el("label", { for: inputId, class: "field-label" }, "Username"),
      input,
      suggestions,
      error,
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
    const username = input.value.trim().replace(/^@/, "");
    if (!username) {
      setText(error, "Enter a username.");
      input.focus();
      return;
    }
    if (members.has(username)) {
      setText(error, `${username} is already a member.`);
      return;
    }
    submit.disabled = true;
    setText(error, "");
    try {
      await ctx.invite(username, { conversationId, rethrow: true });
      close();
    } catch (failure) {
      submit.disabled = false;
      setText(error, errorText(failure));
    }
  });
  body.append(form);
  input.focus();
}
