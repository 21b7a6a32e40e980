// Entry of the chat page's user interface.
//
// `mountChat(root, session)` builds the page inside `root` and keeps it in step with the
// engine (`frontend/src/engine/session.js`): the engine owns all state and all crypto, the
// UI only reads `session.state`, listens to its events and calls its methods. Events are
// batched per task, so a burst (a reconnect replaying fifty messages) renders once.

import { createConnectionBanner } from "./banner.js";
import { createConversationView } from "./conversation.js";
import { el } from "./dom.js";
import { conversationTitle, errorText } from "./format.js";
import { openNewConversationDialog } from "./newconversation.js";
import { createSidebar } from "./sidebar.js";

const INFO_NOTICE_MS = 5000;
const ERROR_NOTICE_MS = 10000;

/**
 * Build the chat UI inside `root` (its previous content is replaced) and keep it live.
 *
 * @param {Element} root the element to fill. The UI brings a `nav` landmark for the sidebar
 *   and a `main` for the conversation; when `root` is (inside) a `<main>` already, the
 *   conversation becomes a labelled region so the page keeps one main landmark.
 * @param {EventTarget & {me: string, state: object}} session the chat engine
 * @returns {{unmount: () => void, openConversation: (id: string|null) => void}}
 */
export function mountChat(root, session) {
  let selected = null;
  let pendingOpen = null; // a conversation to open as soon as the engine lists it
  let sidebarOpen = false;
  const leaving = new Set(); // conversations I am leaving: their disappearance is expected

  // The page may already be a `<main>` (templates/web/chat.html mounts into
  // `<main id="app">`); a second main landmark inside it would be wrong, so the
  // conversation pane is then a labelled region instead.
  const insideMain = Boolean(root.closest("main"));
  const bannerSlot = el("div", { class: "banner-slot" });
  // One name ("Chats") in both states: aria-expanded says whether the list is open.
  const toggleLabel = el("span", {}, "Chats");
  const toggle = el(
    "button",
    {
      type: "button",
      class: "sidebar-toggle",
      "data-testid": "sidebar-toggle",
      "aria-controls": "sc-sidebar",
      "aria-expanded": "false",
      onclick: () => setSidebar(!sidebarOpen),
    },
    el("span", { class: "toggle-icon", "aria-hidden": "true" }, "☰"),
    toggleLabel,
  );
  // Only shown in a narrow window (the site header carries the brand and account links).
  const appbar = el("div", { class: "appbar" }, toggle);
  const politeNotices = el("div", { class: "toast-stack", role: "status" });
  const urgentNotices = el("div", { class: "toast-stack", role: "alert" });
  const backdrop = el("div", {
    class: "sidebar-backdrop",
    "aria-hidden": "true",
    onclick: () => setSidebar(false),
  });
  const app = el("div", { class: "chat-app", "data-testid": "chat-app" });

  /** The context handed to every view: the engine plus the few app-level actions. */
  const ctx = {
    session,
    host: app,
    insideMain,
    selectedId: () => selected,
    selectedConversation: () => (selected ? session.state.conversations.get(selected) || null : null),
    openConversation,
    openNewConversation(usernames = []) {
      openNewConversationDialog(ctx, { usernames }).then((id) => {
        if (id) openWhenListed(id);
      });
    },
    async invite(username, { conversationId = selected, rethrow = false } = {}) {
      const conversation = conversationId ? session.state.conversations.get(conversationId) : null;
      if (!conversation) return;
      try {
        // The engine announces the sent invitation itself (a "notice" event).
        await session.invite(conversationId, username);
      } catch (error) {
        if (rethrow) throw error;
        notify("error", `Could not invite ${username}: ${errorText(error)}`);
      }
    },
    async acceptInvitation(invitation) {
      await session.acceptInvitation(invitation.id);
      openWhenListed(invitation.conversation);
    },
    async leaveConversation(id) {
      const conversation = session.state.conversations.get(id);
      const title = conversation ? conversationTitle(conversation, session.me) : "the conversation";
      leaving.add(id);
      try {
        await session.leave(id);
      } finally {
        leaving.delete(id);
      }
      if (selected === id) openConversation(null);
      notify("info", `You left ${title}.`);
    },
    notify,
    refresh() {
      schedule("all");
    },
    openSidebar: () => setSidebar(true),
  };

  const sidebar = createSidebar(ctx);
  const conversation = createConversationView(ctx);
  const banner = createConnectionBanner(bannerSlot);
  app.append(
    bannerSlot,
    appbar,
    el("div", { class: "layout" }, sidebar.element, backdrop, conversation.element),
    el("div", { class: "toasts" }, politeNotices, urgentNotices),
  );
  root.replaceChildren(app);

  function setSidebar(open) {
    sidebarOpen = open;
    app.classList.toggle("sidebar-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) sidebar.element.querySelector("button, input")?.focus();
  }

  function openConversation(id) {
    pendingOpen = null;
    selected = id && session.state.conversations.has(id) ? id : null;
    conversation.show(selected);
    sidebar.update("selection");
    if (sidebarOpen) setSidebar(false);
    // Tell the engine which conversation is on screen even with nothing unread: it
    // counts unread messages for every other one.
    if (selected && document.visibilityState !== "hidden") {
      lastMarked = "";
      session.markRead(selected);
    }
    if (selected) conversation.focusComposer();
  }

  function openWhenListed(id) {
    if (session.state.conversations.has(id)) openConversation(id);
    else pendingOpen = id;
  }

  let lastMarked = "";
  function markReadIfSeen() {
    if (!selected || document.visibilityState === "hidden") return;
    const open = session.state.conversations.get(selected);
    if (!open || !(open.unread > 0)) return;
    // Once per (conversation, message count, unread): an engine that answers markRead
    // with a change event before zeroing `unread` must not make this loop.
    const mark = `${selected}:${open.messages.length}:${open.unread}`;
    if (mark === lastMarked) return;
    lastMarked = mark;
    session.markRead(selected);
  }

  function notify(level, text) {
    const error = level === "error";
    const notice = el("div", { class: ["toast", error ? "is-error" : "is-info"] });
    const dismiss = el(
      "button",
      {
        type: "button",
        class: "icon-button toast-dismiss",
        "aria-label": "Dismiss notice",
        onclick: () => notice.remove(),
      },
      el("span", { "aria-hidden": "true" }, "×"),
    );
    notice.append(el("p", { class: "toast-text" }, text), dismiss);
    (error ? urgentNotices : politeNotices).append(notice);
    setTimeout(() => notice.remove(), error ? ERROR_NOTICE_MS : INFO_NOTICE_MS);
  }

  // --- engine events, batched ----------------------------------------------------------
  const dirty = new Set();
  let flushQueued = false;
  function schedule(what) {
    dirty.add(what);
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(flush);
  }
  function flush() {
    flushQueued = false;
    const whats = new Set(dirty);
    dirty.clear();
    const all = whats.has("all");
    if (all || whats.has("connection")) {
      banner.update(session.state);
      app.dataset.connection = session.state.connection;
    }
    if (all) {
      sidebar.update();
    } else {
      for (const what of ["invitations", "conversations", "users"]) if (whats.has(what)) sidebar.update(what);
      if (whats.has("conversation") || whats.has(`conversation:${selected}`)) sidebar.update("conversation");
    }
    if (pendingOpen && session.state.conversations.has(pendingOpen)) {
      openConversation(pendingOpen);
    } else if (selected && !session.state.conversations.has(selected)) {
      // Removed, or gone after a resync: say so instead of showing a dead view.
      const expected = leaving.has(selected);
      selected = null;
      conversation.show(null);
      sidebar.update("selection");
      if (!expected) notify("info", "That conversation is no longer available to you.");
    } else if (all || whats.has("conversations") || whats.has("users")) {
      conversation.update(all ? undefined : whats.has("users") ? "users" : "conversations");
    } else if (whats.has(`conversation:${selected}`)) {
      conversation.update("conversation");
    } else if (whats.has(`typing:${selected}`)) {
      conversation.update("typing");
    }
    markReadIfSeen();
  }

  const onChange = (event) => {
    const detail = event.detail || {};
    if (detail.what === "conversation") {
      schedule("conversation");
      if (detail.conversation) schedule(`conversation:${detail.conversation}`);
    } else {
      schedule(detail.what || "all");
    }
    if (detail.what === "connection" && session.state.connection === "online") sidebar.refreshOnline();
  };
  const onTyping = (event) => schedule(`typing:${event.detail?.conversation}`);
  const onNotice = (event) => {
    const detail = event.detail || {};
    if (detail.text) notify(detail.level === "error" ? "error" : "info", detail.text);
  };
  const onKeydown = (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    // A modal <dialog> closes itself on Esc (its cancel event); leave it that.
    if (app.querySelector("dialog[open]")) return;
    if (conversation.closePanel()) {
      event.preventDefault();
      return;
    }
    if (sidebarOpen) {
      event.preventDefault();
      setSidebar(false);
      toggle.focus();
    }
  };
  const onVisibility = () => markReadIfSeen();

  session.addEventListener("change", onChange);
  session.addEventListener("typing", onTyping);
  session.addEventListener("notice", onNotice);
  document.addEventListener("keydown", onKeydown);
  document.addEventListener("visibilitychange", onVisibility);

  schedule("all");
  if (session.state.connection === "online") sidebar.refreshOnline();

  return {
    openConversation,
    unmount() {
      session.removeEventListener("change", onChange);
      session.removeEventListener("typing", onTyping);
      session.removeEventListener("notice", onNotice);
      document.removeEventListener("keydown", onKeydown);
      document.removeEventListener("visibilitychange", onVisibility);
      banner.destroy();
      conversation.show(null); // stops the open view's timers
      app.remove();
    },
  };
}
