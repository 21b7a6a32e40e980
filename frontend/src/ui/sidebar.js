// The sidebar (the page's `nav` landmark): invitations, conversations, who is online
// (searchable) and contacts.
//
// The online list merges two sources: the server's search answer (everyone online who
// matches, paginated) and the engine's live presence (`state.users`, updated by
// presence events). The search answer says who exists; the live map says who is online
// right now, so a user who goes offline after a search flips to offline in place instead
// of waiting for the next search.

import { el, setText, srOnly, syncKeyed, uniqueId } from "./dom.js";
import { avatarHue, conversationTitle, displayName, errorText, initial, reasonText } from "./format.js";

const SEARCH_DELAY_MS = 250;

/**
 * Build the sidebar.
 *
 * @param {object} ctx the app context (see app.js): session, selectedId(), openConversation(id),
 *   openNewConversation(usernames), invite(username), acceptInvitation(invitation), notify(level, text)
 * @returns {{element: HTMLElement, update: (what?: string) => void, focusSearch: () => void, refreshOnline: () => void}}
 */
export function createSidebar(ctx) {
  const { session } = ctx;

  // --- invitations -------------------------------------------------------------------
  const invitationsHeading = uniqueId("invitations");
  const invitationList = el("ul", {
    class: "invitation-list",
    "data-testid": "invitation-list",
    "aria-labelledby": invitationsHeading,
  });
  const invitationCount = el("span", { class: "count-pill" });
  const invitationSection = el(
    "section",
    { class: "sidebar-section invitations", "aria-labelledby": invitationsHeading, hidden: true },
    el("h2", { id: invitationsHeading, class: "section-title" }, "Invitations ", invitationCount),
    invitationList,
  );

  // --- conversations -----------------------------------------------------------------
  const conversationsHeading = uniqueId("conversations");
  const conversationList = el("ul", {
    class: "conversation-list",
    "data-testid": "conversation-list",
    "aria-labelledby": conversationsHeading,
  });
  const conversationsEmpty = el(
    "p",
    { class: "section-empty" },
    "No conversations yet. Start one with “New conversation”.",
  );
  const conversationSection = el(
    "section",
    { class: "sidebar-section", "aria-labelledby": conversationsHeading },
    el("h2", { id: conversationsHeading, class: "section-title" }, "Conversations"),
    conversationList,
    conversationsEmpty,
  );

  // --- online people -----------------------------------------------------------------
  const onlineHeading = uniqueId("online");
  const searchId = uniqueId("search");
  const offlineId = uniqueId("offline");
  const searchInput = el("input", {
    id: searchId,
    type: "search",
    class: "text-input search-input",
    "data-testid": "user-search",
    placeholder: "Search people",
    autocomplete: "off",
    spellcheck: "false",
  });
  const includeOffline = el("input", { id: offlineId, type: "checkbox", class: "checkbox" });
  const onlineList = el("ul", {
    class: "people-list",
    "data-testid": "online-list",
    "aria-labelledby": onlineHeading,
  });
  const onlineStatus = el("p", { class: "section-empty", role: "status" });
  const moreButton = el("button", { type: "button", class: "link-button", hidden: true }, "Show more people");
  const onlineCount = el("span", { class: "count-pill count-pill-quiet" });
  const onlineSection = el(
    "section",
    { class: "sidebar-section", "aria-labelledby": onlineHeading },
    el("h2", { id: onlineHeading, class: "section-title" }, "Online ", onlineCount),
    el(
      "div",
      { class: "search-row" },
      el("label", { for: searchId, class: "sr-only" }, "Search people by name"),
      searchInput,
    ),
    el(
      "div",
      { class: "checkbox-row" },
      includeOffline,
      el("label", { for: offlineId }, "Include people who are offline"),
    ),
    onlineList,
    onlineStatus,
    moreButton,
  );

  // --- contacts ----------------------------------------------------------------------
  const contactsHeading = uniqueId("contacts");
  const contactList = el("ul", {
    class: "people-list",
    "data-testid": "contact-list",
    "aria-labelledby": contactsHeading,
  });
  const contactsEmpty = el(
    "p",
    { class: "section-empty" },
    "People you share a conversation with, and your contacts, appear here.",
  );
  const contactSection = el(
    "section",
    { class: "sidebar-section", "aria-labelledby": contactsHeading },
    el("h2", { id: contactsHeading, class: "section-title" }, "Contacts"),
    contactList,
    contactsEmpty,
  );

  const newButton = el(
    "button",
    {
      type: "button",
      class: "button button-primary new-conversation",
      "data-testid": "new-conversation",
      onclick: () => ctx.openNewConversation([]),
    },
    el("span", { "aria-hidden": "true", class: "button-icon" }, "+"),
    "New conversation",
  );

  const element = el(
    "nav",
    { class: "sidebar", id: "sc-sidebar", "aria-label": "Conversations and people" },
    el("div", { class: "sidebar-top" }, newButton),
    invitationSection,
    conversationSection,
    onlineSection,
    contactSection,
  );

  // --- search state ------------------------------------------------------------------
  let results = []; // [{username, displayName, online}] from the server
  let page = 1;
  let hasMore = false;
  let searchSeq = 0; // answers to older searches are dropped
  let searchTimer = null;
  let searchError = "";
  let searching = false;
  // Usernames first seen through a search: they are not contacts, so the contact list
  // leaves them out (unless they share a conversation with me).
  const strangers = new Set();

  const runSearch = async ({ append = false } = {}) => {
    const seq = ++searchSeq;
    const query = searchInput.value.trim();
    const nextPage = append ? page + 1 : 1;
    searching = true;
    renderOnline();
    // Who the engine knew before: it adds search results to its users as it answers.
    const knownBefore = new Set(session.state.users.keys());
    try {
      const answer = await session.searchUsers(query, {
        onlineOnly: !includeOffline.checked,
        page: nextPage,
      });
      if (seq !== searchSeq) return;
      const users = answer.users || [];
      for (const user of users) {
        if (!knownBefore.has(user.username)) strangers.add(user.username);
      }
      results = append ? mergeUsers(results, users) : users;
      page = nextPage;
      hasMore = Boolean(answer.hasMore);
      searchError = "";
    } catch (error) {
      if (seq !== searchSeq) return;
      searchError = `Search failed: ${errorText(error)}`;
      if (!append) results = [];
    } finally {
      if (seq === searchSeq) searching = false;
    }
    renderOnline();
    renderContacts();
  };

  const scheduleSearch = () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => runSearch(), SEARCH_DELAY_MS);
  };

  searchInput.addEventListener("input", scheduleSearch);
  searchInput.addEventListener("keydown", (event) => {
    // Enter searches at once (no wait for the pause); Esc in a non-empty field clears it
    // instead of closing the sidebar.
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(searchTimer);
      runSearch();
    } else if (event.key === "Escape" && searchInput.value) {
      event.stopPropagation();
    }
  });
  includeOffline.addEventListener("change", () => runSearch());
  moreButton.addEventListener("click", () => runSearch({ append: true }));

  // --- rendering ---------------------------------------------------------------------
  const renderInvitations = () => {
    const invitations = [...session.state.invitations.values()].sort((a, b) =>
      String(b.created || "").localeCompare(String(a.created || "")),
    );
    invitationSection.hidden = invitations.length === 0;
    setText(invitationCount, invitations.length ? String(invitations.length) : "");
    syncKeyed(
      invitationList,
      invitations,
      (invitation) => String(invitation.id),
      (invitation) => createInvitationItem(ctx, invitation),
      updateInvitationItem,
    );
  };

  const renderConversations = () => {
    const conversations = [...session.state.conversations.values()].sort(byRecentActivity);
    conversationsEmpty.hidden = conversations.length > 0;
    const selected = ctx.selectedId();
    syncKeyed(
      conversationList,
      conversations,
      (conversation) => conversation.id,
      (conversation) => createConversationItem(ctx, conversation),
      (node, conversation) =>
        updateConversationItem(node, conversation, session.me, selected, session.state.users),
    );
  };

  const renderOnline = () => {
    const query = searchInput.value.trim().toLowerCase();
    const onlineOnly = !includeOffline.checked;
    const live = session.state.users;
    const byName = new Map();
    for (const user of results) byName.set(user.username, user);
    // People the engine knows about who match and are online now are shown even when the
    // last search predates their arrival.
    for (const user of live.values()) {
      if (byName.has(user.username)) continue;
      if (onlineOnly && !user.online) continue;
      if (!matches(user, query)) continue;
      byName.set(user.username, user);
    }
    byName.delete(session.me);
    const people = [...byName.values()]
      .map((user) => ({ ...user, ...(live.get(user.username) || {}) }))
      .sort(byPresenceThenName);
    const open = ctx.selectedConversation();
    const memberNames = new Set(open ? open.members.map((member) => member.username) : []);
    syncKeyed(
      onlineList,
      people,
      (user) => user.username,
      (user) => createPersonItem(ctx, user, "online-user"),
      (node, user) => updatePersonItem(node, user, open, memberNames, true),
    );
    const onlineNow = people.filter((user) => user.online).length;
    setText(onlineCount, String(onlineNow));
    moreButton.hidden = !hasMore;
    let status = "";
    if (searchError) status = searchError;
    else if (searching && people.length === 0) status = "Searching…";
    else if (people.length === 0) {
      status = query ? "Nobody matches that search." : "Nobody else is online right now.";
    }
    setText(onlineStatus, status);
    onlineStatus.hidden = status === "";
    onlineStatus.classList.toggle("is-error", Boolean(searchError));
  };

  const renderContacts = () => {
    const coMembers = new Set();
    for (const conversation of session.state.conversations.values()) {
      for (const member of conversation.members) coMembers.add(member.username);
    }
    const contacts = [...session.state.users.values()]
      .filter((user) => user.username !== session.me && isContact(user, coMembers, strangers))
      .sort(byPresenceThenName);
    contactsEmpty.hidden = contacts.length > 0;
    const open = ctx.selectedConversation();
    const memberNames = new Set(open ? open.members.map((member) => member.username) : []);
    syncKeyed(
      contactList,
      contacts,
      (user) => user.username,
      (user) => createPersonItem(ctx, user, "contact"),
      (node, user) => updatePersonItem(node, user, open, memberNames, false),
    );
  };

  const update = (what) => {
    if (!what || what === "invitations") renderInvitations();
    if (!what || what === "conversations" || what === "conversation" || what === "selection") {
      renderConversations();
    }
    if (
      !what ||
      what === "users" ||
      what === "selection" ||
      what === "conversations" ||
      what === "conversation"
    ) {
      renderOnline();
      renderContacts();
    }
  };

  update();

  return {
    element,
    update,
    focusSearch() {
      searchInput.focus();
    },
    refreshOnline() {
      runSearch();
    },
  };
}

// --- items ---------------------------------------------------------------------------

function createInvitationItem(ctx, invitation) {
  const { session } = ctx;
  const id = String(invitation.id);
  const titleId = uniqueId("invitation");
  const text = el("p", { class: "invitation-text", id: titleId });
  const busy = (on) => {
    accept.disabled = on;
    decline.disabled = on;
  };
  const accept = el(
    "button",
    {
      type: "button",
      class: "button button-primary button-small",
      "data-testid": `accept-${id}`,
      "aria-describedby": titleId,
      onclick: async () => {
        busy(true);
        try {
          await ctx.acceptInvitation(invitation);
        } catch (error) {
          busy(false);
          ctx.notify("error", `Could not accept: ${errorText(error)}`);
        }
      },
    },
    "Accept",
  );
  const decline = el(
    "button",
    {
      type: "button",
      class: "button button-small",
      "data-testid": `decline-${id}`,
      "aria-describedby": titleId,
      onclick: async () => {
        busy(true);
        try {
          await session.declineInvitation(invitation.id);
        } catch (error) {
          busy(false);
          ctx.notify("error", `Could not decline: ${errorText(error)}`);
        }
      },
    },
    "Decline",
  );
  const problem = el("p", { class: "invitation-problem", hidden: true });
  const node = el(
    "li",
    { class: "invitation", "data-testid": `invitation-${id}` },
    text,
    problem,
    el("div", { class: "invitation-actions" }, accept, decline),
  );
  node._text = text;
  node._problem = problem;
  return node;
}

function updateInvitationItem(node, invitation) {
  const title = invitation.conversation_title || "a conversation";
  const quoted = invitation.conversation_title ? `“${title}”` : title;
  setText(node._text, `${invitation.inviter} invited you to ${quoted}`);
  // The engine checks a members-origin invitation's signed statement on arrival and says
  // why it does not hold; the user decides, knowing it.
  const reason = invitation.problem ? reasonText(invitation.problem) : "";
  setText(node._problem, reason);
  node._problem.hidden = reason === "";
}

function createConversationItem(ctx, conversation) {
  const title = el("span", { class: "conversation-name" });
  const meta = el("span", { class: "conversation-meta" });
  const warning = el("span", { class: "trust-dot is-degraded", hidden: true });
  const unread = el("span", { class: "unread-pill", hidden: true });
  const button = el(
    "button",
    {
      type: "button",
      class: "conversation-button",
      onclick: () => ctx.openConversation(conversation.id),
    },
    el("span", { class: "conversation-lines" }, title, meta),
    warning,
    unread,
  );
  const node = el(
    "li",
    { class: "conversation-item", "data-testid": `conversation-${conversation.id}` },
    button,
  );
  Object.assign(node, { _title: title, _meta: meta, _unread: unread, _warning: warning, _button: button });
  return node;
}

function updateConversationItem(node, conversation, me, selectedId, users) {
  setText(node._title, conversationTitle(conversation, me));
  const memberCount = conversation.members.length;
  const last = lastMessage(conversation);
  let meta = `${memberCount} ${memberCount === 1 ? "member" : "members"}`;
  if (last) {
    const who = last.mine ? "You" : last.sender ? displayName(users, last.sender) : "Earlier";
    meta = last.text === null ? `${who}: message not readable` : `${who}: ${oneLine(last.text)}`;
  }
  setText(node._meta, meta);
  const unread = Number(conversation.unread) || 0;
  node.dataset.unread = String(unread);
  node._unread.hidden = unread === 0;
  node._unread.replaceChildren(
    String(unread > 99 ? "99+" : unread),
    srOnly(unread === 1 ? " unread message" : " unread messages"),
  );
  const degraded = conversation.trust === "degraded";
  node._warning.hidden = !degraded;
  node._warning.replaceChildren(degraded ? srOnly("A member's key changed") : "");
  node._button.classList.toggle("has-unread", unread > 0);
  if (conversation.id === selectedId) node._button.setAttribute("aria-current", "page");
  else node._button.removeAttribute("aria-current");
}

function createPersonItem(ctx, user, testidPrefix) {
  const avatar = el("span", { class: "avatar avatar-small", "aria-hidden": "true" });
  const name = el("span", { class: "person-name" });
  const handle = el("span", { class: "person-handle" });
  const status = el("span", { class: "person-status" });
  const actions = el("span", { class: "person-actions" });
  // The person itself is the button that starts a conversation with them (as in most
  // chat apps); "Invite" is the only other action, shown when it applies.
  const main = el(
    "button",
    {
      type: "button",
      class: "person-main",
      onclick: () => ctx.openNewConversation([user.username]),
    },
    el(
      "span",
      { class: "avatar-wrap" },
      avatar,
      el("span", { class: "presence-dot", "aria-hidden": "true" }),
    ),
    el(
      "span",
      { class: "person-lines" },
      srOnly("Start a conversation with "),
      name,
      el("span", { class: "person-sub" }, handle, status),
    ),
  );
  const node = el(
    "li",
    { class: "person", "data-testid": `${testidPrefix}-${user.username}` },
    main,
    actions,
  );
  const invite = el(
    "button",
    {
      type: "button",
      class: "button button-small",
      onclick: () => ctx.invite(user.username),
    },
    "Invite",
  );
  Object.assign(node, {
    _avatar: avatar,
    _name: name,
    _handle: handle,
    _status: status,
    _actions: actions,
    _invite: invite,
  });
  return node;
}

function updatePersonItem(node, user, openConversation, memberNames, withInviteTestid) {
  const shown = user.displayName || user.username;
  setText(node._avatar, initial(shown));
  node._avatar.dataset.hue = String(avatarHue(user.username));
  setText(node._name, shown);
  setText(node._handle, `@${user.username}`);
  setText(node._status, user.online ? " · online" : " · offline");
  node.dataset.online = user.online ? "true" : "false";
  node.classList.toggle("is-online", Boolean(user.online));
  const canInvite = openConversation && !memberNames.has(user.username);
  const wanted = [];
  if (canInvite) {
    // Only the online list carries the test hook, so one user never has two elements
    // with the same data-testid.
    if (withInviteTestid) node._invite.dataset.testid = `invite-${user.username}`;
    node._invite.setAttribute("aria-label", `Invite ${user.username} to the open conversation`);
    wanted.push(node._invite);
  }
  if (
    node._actions.childNodes.length !== wanted.length ||
    wanted.some((child, i) => node._actions.childNodes[i] !== child)
  ) {
    node._actions.replaceChildren(...wanted);
  }
}

// --- helpers -------------------------------------------------------------------------

/**
 * Whether to list a known user under Contacts: an engine flag `contact` when it gives one
 * (the presence snapshot's people), anyone I share a conversation with, and otherwise
 * anyone the engine knows who did not come from a search (mine, or the engine's own
 * online refresh, which marks its users `fromSearch`).
 */
function isContact(user, coMembers, strangers) {
  if (user.contact === true || coMembers.has(user.username)) return true;
  if (user.contact === false) return false;
  return !user.fromSearch && !strangers.has(user.username);
}

function matches(user, query) {
  if (!query) return true;
  return (
    user.username.toLowerCase().includes(query) ||
    String(user.displayName || "")
      .toLowerCase()
      .includes(query)
  );
}

function mergeUsers(existing, more) {
  const seen = new Set(existing.map((user) => user.username));
  return existing.concat(more.filter((user) => !seen.has(user.username)));
}

function byPresenceThenName(a, b) {
  if (Boolean(a.online) !== Boolean(b.online)) return a.online ? -1 : 1;
  return (a.displayName || a.username).localeCompare(b.displayName || b.username);
}

function lastMessage(conversation) {
  const messages = conversation.messages || [];
  return messages.length ? messages[messages.length - 1] : null;
}

function activityTime(conversation) {
  const last = lastMessage(conversation);
  if (!last) return Number.POSITIVE_INFINITY;
  const stored = last.sentAt ? Date.parse(last.sentAt) : NaN;
  return Number.isFinite(stored) ? stored : Number(last.timestampMs) || 0;
}

// Newest activity first; a conversation without messages yet (usually one just made)
// goes on top, where the user looks for it.
function byRecentActivity(a, b) {
  const timeA = activityTime(a);
  const timeB = activityTime(b);
  if (timeA !== timeB) return timeB > timeA ? 1 : -1;
  return String(a.title || "").localeCompare(String(b.title || ""));
}

function oneLine(text) {
  const line = String(text).replace(/\s+/g, " ").trim();
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}
