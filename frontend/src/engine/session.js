/**
 * The browser's chat session: one socket, the conversations this user is in, and every
 * check of protocol.md §5 before anything is shown. The UI reads `state` and listens
 * for "change", "typing" and "notice" events; it never touches the socket or the keys.
 *
 * Every server event goes through one queue, handled in arrival order (a key record is
 * verified before the messages that follow it are opened), as the Python client does.
 */

import { fingerprint, safetyNumber } from "../crypto/fingerprints.js";
import { ConversationState } from "./conversation.js";
import { EpochKeeper } from "./epochs.js";
import { MessageOpener } from "./messages.js";
import { reasonFor } from "./reasons.js";
import { LiveSocket, ProtocolError, backoff } from "./socket.js";
import { TrustStore } from "./trust.js";

/** Refusals a send may be retried after, with the same body (protocol.md §7). */
const RETRYABLE = new Set(["closed", "timeout", "internal_error", "unavailable", "rate_limited"]);
const TYPING_SHOWN_MS = 4000;
const ONLINE_REFRESH_MS = 15_000;

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class ChatSession extends EventTarget {
  /**
   * @param {{me: string, keys: object, http: object, store: {load: Function, save: Function}, wsUrl: string}} options
   *   keys: {signing: {algorithm, privateKey, spki, serial}, encryption: {privateKey, spki, serial}}
   */
  constructor({ me, keys, http, store, wsUrl }) {
    super();
    this.me = me;
    this.keys = keys;
    this.http = http;
    this.store = store;
    this.wsUrl = wsUrl;
    // This page is one sending device: its own sequence numbers (protocol §3.4).
    this.device = randomHex(16);
    this.state = {
      connection: "connecting",
      retryInSeconds: null,
      users: new Map(),
      conversations: new Map(),
      invitations: new Map(),
    };
    this.chains = new Map(); // conversation id -> ConversationState (the verified chain)
    this.queue = Promise.resolve();
    this.openConversation = null;
    this.typingTimers = new Map();
  }

  // --- start and the event queue ---------------------------------------------------

  async start() {
    this.authority = await this.http.getJson("/api/keys/ca/");
    this.trust = new TrustStore({ http: this.http, store: this.store, authority: this.authority });
    await this.trust.load();
    await this.trust.pinOwn(this.me, this.keys.signing.spki, this.keys.encryption.spki);
    this.epochs = new EpochKeeper(this);
    this.opener = new MessageOpener(this);
    this.socket = new LiveSocket(this.wsUrl, {
      onEvent: (frame) => this.enqueue(() => this.handle(frame)),
      onState: (state, retry) => this.connectionChanged(state, retry),
    });
    const synced = new Promise((resolve) => {
      this.markSynced = resolve;
    });
    this.socket.open();
    this.onlineTimer = setInterval(() => this.refreshOnline().catch(() => {}), ONLINE_REFRESH_MS);
    await synced; // the first resync: conversations and their messages are loaded
  }

  stop() {
    clearInterval(this.onlineTimer);
    this.socket?.close();
  }

  /** Run `task` after every earlier event; a failure is shown, never stops the queue. */
  enqueue(task) {
    this.queue = this.queue.then(task).catch((error) => this.notice("error", describe(error)));
    return this.queue;
  }

  emit(what, conversation) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, conversation } }));
  }

  notice(level, text) {
    this.dispatchEvent(new CustomEvent("notice", { detail: { level, text } }));
  }

  connectionChanged(state, retryInSeconds) {
    const wasAway = this.state.connection !== "online";
    this.state.connection = state;
    this.state.retryInSeconds = retryInSeconds;
    this.emit("connection");
    // Back online (first connect included): fetch what changed meanwhile from the database.
    if (state === "online" && wasAway) this.enqueue(() => this.resync());
  }

  request(type, fields) {
    return this.socket.request(type, fields);
  }

  async handle(frame) {
    const handler = EVENT_HANDLERS[frame.type];
    if (handler && frame.id == null) await handler.call(this, frame);
  }

  // --- resync: the database is the record ------------------------------------------

  async resync() {
    try {
      await this.refreshConversations();
      for (const id of [...this.state.conversations.keys()]) await this.fetchSince(id);
      await this.refreshOnline();
    } finally {
      this.synced = true;
      this.markSynced?.(); // the page is ready even if a part failed: failures are shown
    }
  }

  async refreshConversations() {
    const listed = [];
    for (let page = 1; ; page += 1) {
      const reply = await this.request("conversation.list", { page });
      listed.push(...reply.conversations);
      if (!reply.has_more) break;
    }
    const seen = new Set();
    for (const details of listed) {
      seen.add(details.id);
      try {
        this.track(details);
      } catch (error) {
        // e.g. origin_changed: shown, never applied; the other conversations go on
        this.notice("error", `${details.title || "A conversation"}: ${describe(error)}`);
      }
    }
    for (const id of this.state.conversations.keys()) if (!seen.has(id)) this.forget(id);
    this.emit("conversations");
  }

  /** Messages stored after the newest one I have, oldest first; gaps I cannot read marked. */
  async fetchSince(id) {
    const view = this.state.conversations.get(id);
    if (!view) return;
    let since = view.lastOrder;
    for (;;) {
      let reply;
      try {
        reply = await this.request("conversation.history", { conversation: id, since, limit: 200 });
      } catch (error) {
        if (error.code === "not_member" || error.code === "not_found") return;
        throw error;
      }
      for (const message of reply.messages) {
        await this.receiveMessage(message, { live: false });
        since = Math.max(since, message.order);
      }
      if (!reply.has_more) break;
    }
    this.markUnreadable(view, view.serverLastOrder);
  }

  async refreshOnline() {
    const reply = await this.request("users.search", { query: "", online_only: true, page: 1 });
    const online = new Set(reply.users.map((u) => u.username));
    for (const user of this.state.users.values()) if (user.fromSearch && !online.has(user.username)) user.online = false;
    for (const u of reply.users) this.rememberUser(u.username, { displayName: u.display_name, online: true, fromSearch: true });
    this.emit("users");
  }

  rememberUser(username, fields) {
    const known = this.state.users.get(username) ?? { username, displayName: username, online: false };
    Object.assign(known, Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== "")));
    this.state.users.set(username, known);
    return known;
  }

  // --- conversations ---------------------------------------------------------------

  chain(id) {
    if (!this.chains.has(id)) this.chains.set(id, new ConversationState(id));
    return this.chains.get(id);
  }

  /** Keep a conversation object (protocol §4.2); refuses a changed key origin. */
  track(details) {
    const chain = this.chain(details.id);
    chain.fixKeyOrigin(details.key_origin);
    if (!chain.createdBy) chain.createdBy = details.created_by;
    let view = this.state.conversations.get(details.id);
    if (!view) {
      view = {
        id: details.id,
        messages: [],
        unread: 0,
        typing: [],
        lastOrder: 0,
        orders: new Set(),
        trust: "unverified",
      };
      this.state.conversations.set(details.id, view);
    }
    Object.assign(view, {
      title: details.title,
      keyOrigin: chain.keyOrigin,
      createdBy: details.created_by,
      members: details.members.map((m) => ({
        username: m.username,
        displayName: m.display_name,
        role: m.role,
        accepted: m.accepted !== false,
      })),
      // A message request for me: put in by someone who is not a mutual contact.
      request: details.members.some((m) => m.username === this.me && m.accepted === false),
      epoch: details.epoch,
      epochPending: details.epoch_pending,
      serverLastOrder: Math.max(view.serverLastOrder ?? 0, details.last_order),
    });
    for (const m of details.members) this.rememberUser(m.username, { displayName: m.display_name });
    this.updateTrust(view);
    return view;
  }

  forget(id) {
    this.state.conversations.delete(id);
    this.chains.delete(id);
    if (this.openConversation === id) this.openConversation = null;
  }

  async refreshConversation(id) {
    await this.refreshConversations();
    this.emit("conversation", id);
  }

  /** Orders below the newest that history did not return are from epochs I had no key in. */
  markUnreadable(view, upTo) {
    const missing = [];
    for (let order = 1; order <= upTo; order += 1) {
      if (!view.orders.has(order)) missing.push(order);
    }
    view.messages = view.messages.filter((m) => m.status !== "unreadable");
    if (missing.length) {
      view.messages.unshift({
        key: `gap-${missing[0]}-${missing.length}`,
        order: missing[0],
        clientId: null,
        sender: "",
        mine: false,
        text: null,
        timestampMs: null,
        sentAt: null,
        epoch: null,
        status: "failed",
        problem: {
          code: "not_member_then",
          reason: `${reasonFor("not_member_then")} (${missing.length} message${missing.length > 1 ? "s" : ""})`,
        },
        signer: { verified: false, keyChanged: false },
        delivery: null,
      });
      this.sortMessages(view);
    }
    this.emit("conversation", view.id);
  }

  sortMessages(view) {
    view.messages.sort((a, b) => (a.order ?? Infinity) - (b.order ?? Infinity));
  }

  updateTrust(view) {
    const others = view.members.filter((m) => m.username !== this.me).map((m) => m.username);
    if (others.some((name) => this.trust.changes.has(name))) view.trust = "degraded";
    else view.trust = others.length && others.every((name) => this.trust.isVerified(name)) ? "verified" : "unverified";
  }

  // --- messages ---------------------------------------------------------------------

  /** A stored message (live, backlog or history): opened once per (conversation, order). */
  async receiveMessage(message, { live }) {
    let view = this.state.conversations.get(message.conversation);
    if (!view) {
      await this.refreshConversations();
      view = this.state.conversations.get(message.conversation);
      if (!view) return;
    }
    if (view.orders.has(message.order)) return;
    if (live && message.order > view.lastOrder + 1 && view.lastOrder > 0) {
      await this.fetchSince(view.id); // a live event was lost: fetch the ones between first
      if (view.orders.has(message.order)) return;
    }
    view.orders.add(message.order);
    view.lastOrder = Math.max(view.lastOrder, message.order);
    view.serverLastOrder = Math.max(view.serverLastOrder ?? 0, message.order);
    const mine = view.messages.find((m) => m.mine && m.clientId === message.client_id && m.order == null);
    const model = mine ?? this.opener.blank(message);
    Object.assign(model, { order: message.order, sentAt: message.sent_at, raw: message });
    if (!mine) {
      view.messages.push(model);
      await this.opener.open(view, model);
      // Unread: what arrives after the page loaded (history at load is not news).
      const news = live || this.synced;
      if (news && message.sender !== this.me && (this.openConversation !== view.id || document.hidden)) view.unread += 1;
    }
    this.sortMessages(view);
    if (message.sender !== this.me) this.scheduleReceipt(view.id, message.order);
    this.emit("conversation", view.id);
  }

  /** One receipt for a run of messages: the newest covers the ones before it. */
  scheduleReceipt(id, order) {
    this.receipts ??= new Map();
    const pending = this.receipts.get(id);
    if (pending) {
      pending.upTo = Math.max(pending.upTo, order);
      return;
    }
    const entry = { upTo: order };
    this.receipts.set(id, entry);
    setTimeout(() => {
      this.receipts.delete(id);
      this.request("delivery.ack", { conversation: id, up_to: entry.upTo }).catch(() => {});
    }, 150);
  }

  /**
   * Encrypt, sign and send `text`; retried with the same body until acknowledged. Refuses
   * (code key_change_unconfirmed) while a verified member's key changed unconfirmed.
   */
  async send(conversationId, text) {
    const view = this.state.conversations.get(conversationId);
    if (!view) throw new ProtocolError("not_found", "No such conversation.");
    const changes = view.members
      .map((m) => m.username)
      .filter((name) => this.trust.changes.has(name) && this.trust.verified[name])
      .map((name) => ({ username: name, ...this.trust.changes.get(name) }));
    if (changes.length) {
      const error = new ProtocolError("key_change_unconfirmed", "A verified member's key changed.");
      error.changes = changes;
      throw error;
    }
    const localId = crypto.randomUUID();
    const model = {
      key: `c-${localId}`,
      order: null,
      clientId: localId,
      sender: this.me,
      mine: true,
      text,
      timestampMs: Date.now(),
      sentAt: null,
      epoch: null,
      status: "sending",
      problem: null,
      signer: { verified: true, keyChanged: false },
      delivery: { state: "sending", deliveredTo: 0, of: view.members.length - 1, recipients: new Set() },
      body: null,
      checks: [],
    };
    view.messages.push(model); // shown at once, even while a members-mode key is made
    this.emit("conversation", conversationId);
    try {
      await this.epochs.waitForKey(conversationId, 10_000);
      model.body = await this.chain(conversationId).encrypt(text, {
        sender: this.me,
        device: this.device,
        signingKey: this.keys.signing,
        signingSerial: this.keys.signing.serial,
        clientId: localId,
      });
    } catch (error) {
      model.status = "failed";
      model.problem = { code: error.code ?? "no_epoch_key", reason: reasonFor("send_failed", { message: error.message }) };
      this.emit("conversation", conversationId);
      throw error;
    }
    Object.assign(model, { epoch: model.body.epoch, timestampMs: model.body.timestamp_ms });
    await this.sendBody(view, model);
  }

  async sendBody(view, model) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const ack = await this.request("message.send", model.body);
        model.order = ack.order;
        model.status = "ok";
        model.delivery.state = model.delivery.deliveredTo ? "delivered" : "sent";
        view.orders.add(ack.order);
        view.lastOrder = Math.max(view.lastOrder, ack.order);
        this.sortMessages(view);
        this.emit("conversation", view.id);
        return;
      } catch (error) {
        if (!RETRYABLE.has(error.code) || attempt >= 8) {
          model.status = "failed";
          model.problem = { code: error.code, reason: reasonFor("send_failed", { message: error.message }) };
          this.emit("conversation", view.id);
          throw error;
        }
        model.status = "retrying";
        this.emit("conversation", view.id);
        await new Promise((resolve) => setTimeout(resolve, backoff(attempt) * 1000));
      }
    }
  }

  // --- the UI's other requests ------------------------------------------------------

  async searchUsers(query, { onlineOnly = true, page = 1 } = {}) {
    const reply = await this.request("users.search", { query, online_only: onlineOnly, page });
    const users = reply.users.map((u) =>
      this.rememberUser(u.username, { displayName: u.display_name, online: u.online }),
    );
    this.emit("users");
    return { users, hasMore: reply.has_more };
  }

  async createConversation(usernames, { title = "", keyOrigin = "server" } = {}) {
    const names = [...new Set(usernames.map((u) => u.trim()).filter(Boolean))];
    if (keyOrigin === "members") {
      // Check and pin every member's keys now: epoch 1 is wrapped to exactly these.
      for (const name of names) await this.epochs.checkedKeyHashes(name);
    }
    const reply = await this.request("conversation.create", { usernames: names, title, key_origin: keyOrigin });
    this.epochs.intended.set(reply.conversation, new Set([this.me, ...names]));
    this.epochs.wake();
    this.track(reply.details);
    this.emit("conversations");
    return reply.conversation;
  }

  async invite(conversationId, username) {
    const fields = await this.epochs.statementFields(conversationId, "add", username);
    await this.request("invite.send", { conversation: conversationId, username, ...fields });
    this.notice("info", `Invitation sent to ${username}.`);
  }

  async acceptInvitation(invitationId) {
    const reply = await this.request("invite.accept", { invitation: Number(invitationId) });
    this.state.invitations.delete(Number(invitationId));
    this.emit("invitations");
    await this.enqueue(async () => {
      this.track(reply.details);
      if (!reply.details.epoch_pending) await this.epochs.fetch(reply.conversation, [reply.details.epoch]);
      await this.fetchSince(reply.conversation);
    });
    this.emit("conversations");
    return reply.conversation;
  }

  async declineInvitation(invitationId) {
    await this.request("invite.decline", { invitation: Number(invitationId) });
    this.state.invitations.delete(Number(invitationId));
    this.emit("invitations");
  }

  async leave(conversationId) {
    const fields = await this.epochs.statementFields(conversationId, "leave", this.me);
    await this.request("conversation.leave", { conversation: conversationId, ...fields });
    this.forget(conversationId);
    this.emit("conversations");
  }

  /** Accept a message request: the conversation becomes like any other. */
  async acceptRequest(conversationId) {
    await this.request("conversation.accept", { conversation: conversationId });
    const view = this.state.conversations.get(conversationId);
    if (view) {
      view.request = false;
      this.emit("conversation", conversationId);
    }
  }

  /** Leave a message request, and refuse its creator from now on when `block`. */
  async declineRequest(conversationId, { block = false } = {}) {
    const creator = this.state.conversations.get(conversationId)?.createdBy;
    await this.leave(conversationId);
    if (block && creator) await this.request("user.block", { username: creator });
  }

  markRead(conversationId) {
    this.openConversation = conversationId;
    const view = this.state.conversations.get(conversationId);
    if (view && view.unread) {
      view.unread = 0;
      this.emit("conversations");
    }
  }

  sendTyping(conversationId) {
    this.socket.notify("typing", { conversation: conversationId });
  }

  async safetyNumber(username) {
    const theirs = await this.currentSigningSpki(username);
    return {
      number: await safetyNumber(this.me, this.keys.signing.spki, username, theirs),
      mine: await fingerprint(this.keys.signing.spki),
      theirs: await fingerprint(theirs),
    };
  }

  /** The signing key I hold for `username`: the pending new one if it changed, else the pinned one as certified now. */
  async currentSigningSpki(username) {
    const change = this.trust.changes.get(username);
    if (change?.kind === "signing") return change.spki;
    const body = await this.http.getJson(`/api/keys/users/${encodeURIComponent(username)}/`);
    if (!body.signing) throw new ProtocolError("no_active_keys", `${username} has no signing key.`);
    const certificate = await this.trust.verifyObject(body.signing, { username, kind: "signing" });
    return certificate.spki;
  }

  isVerified(username) {
    return this.trust.isVerified(username);
  }

  async markVerified(username) {
    const spki = await this.currentSigningSpki(username);
    const seen = await this.trust.checkPin(username, "signing", spki);
    await this.trust.markVerified(username, seen);
    this.refreshTrust();
  }

  async unmarkVerified(username) {
    await this.trust.unmarkVerified(username);
    this.refreshTrust();
  }

  /** The user compared safety numbers: accept `username`'s current keys, re-open what waited on them. */
  async confirmKeyChange(username) {
    const body = await this.http.getJson(`/api/keys/users/${encodeURIComponent(username)}/`);
    const pins = {};
    for (const kind of ["signing", "encryption"]) {
      if (!body[kind]) continue;
      const certificate = await this.trust.verifyObject(body[kind], { username, kind });
      pins[kind] = await fingerprint(certificate.spki);
    }
    await this.trust.acceptKeys(username, pins);
    this.refreshTrust();
    await this.enqueue(async () => {
      await this.epochs.retryHeld();
      await this.opener.reopen((m) => m.sender === username);
    });
  }

  refreshTrust() {
    for (const view of this.state.conversations.values()) {
      this.updateTrust(view);
      for (const m of view.messages) {
        if (!m.sender || m.mine) continue;
        m.signer = { verified: this.trust.isVerified(m.sender), keyChanged: this.trust.changes.has(m.sender) };
      }
    }
    this.emit("conversations");
    if (this.openConversation) this.emit("conversation", this.openConversation);
  }

  memberTrust(conversationId) {
    const view = this.state.conversations.get(conversationId);
    if (!view) return [];
    return view.members.map((m) => ({
      username: m.username,
      fingerprint: this.trust.pins[m.username]?.signing ?? "",
      verified: this.trust.isVerified(m.username),
      keyChanged: this.trust.changes.has(m.username),
      me: m.username === this.me,
    }));
  }

  async inspect(conversationId, messageKey) {
    const view = this.state.conversations.get(conversationId);
    const model = view?.messages.find((m) => m.key === messageKey);
    if (!model) throw new ProtocolError("not_found", "No such message.");
    return this.opener.inspect(view, model);
  }
}

/** Server events (protocol.md §4.3), each handled in order by the queue. */
const EVENT_HANDLERS = {
  async "presence.snapshot"(frame) {
    for (const u of frame.users) this.rememberUser(u.username, { online: u.online });
    this.emit("users");
  },
  async "presence.changed"(frame) {
    this.rememberUser(frame.username, { online: frame.online });
    this.emit("users");
  },
  async resync() {
    await this.resync();
  },
  async "conversation.created"(frame) {
    this.track(frame.details);
    this.emit("conversations");
  },
  async "invite.received"(frame) {
    const invitation = frame.invitation;
    try {
      if (invitation.statement) await this.epochs.checkInvitation(invitation);
    } catch (error) {
      invitation.problem = { code: error.code, reason: reasonFor(error.code, {}) };
    }
    this.state.invitations.set(invitation.id, invitation);
    this.emit("invitations");
  },
  async "invite.cancelled"(frame) {
    this.state.invitations.delete(frame.invitation.id);
    this.emit("invitations");
  },
  async "invite.answered"(frame) {
    const { invitee, status } = frame.invitation;
    this.notice("info", `${invitee} ${status === "accepted" ? "accepted" : "declined"} your invitation.`);
  },
  async "member.joined"(frame) {
    await this.refreshConversation(frame.conversation);
  },
  async "member.left"(frame) {
    await this.refreshConversation(frame.conversation);
  },
  async "member.removed"(frame) {
    if (frame.username === this.me) {
      this.forget(frame.conversation);
      this.emit("conversations");
      this.notice("info", "You were removed from a conversation.");
    } else {
      await this.refreshConversation(frame.conversation);
    }
  },
  async "epoch.new"(frame) {
    await this.epochs.accept(frame.epoch, { live: true });
    await this.opener.reopen((m) => m.problem?.code === "no_epoch_key" && m.raw?.conversation === frame.epoch.conversation);
  },
  async "epoch.request"(frame) {
    await this.epochs.make(frame);
  },
  async "cert.revoked"() {
    await this.trust.refreshRevocations();
  },
  async "key.changed"(frame) {
    await this.epochs.noticeKeyChange(frame.username);
    this.refreshTrust();
  },
  async "message.new"(frame) {
    await this.receiveMessage(frame.message, { live: true });
  },
  async "message.delivered"(frame) {
    const view = this.state.conversations.get(frame.conversation);
    if (!view) return;
    const orders = new Set(frame.orders);
    for (const m of view.messages) {
      if (!m.mine || !orders.has(m.order) || !m.delivery) continue;
      m.delivery.recipients.add(frame.recipient);
      m.delivery.deliveredTo = m.delivery.recipients.size;
      m.delivery.state = "delivered";
    }
    this.emit("conversation", view.id);
  },
  async typing(frame) {
    const view = this.state.conversations.get(frame.conversation);
    if (!view || frame.username === this.me) return;
    if (!view.typing.includes(frame.username)) view.typing.push(frame.username);
    const key = `${frame.conversation}/${frame.username}`;
    clearTimeout(this.typingTimers.get(key));
    this.typingTimers.set(
      key,
      setTimeout(() => {
        view.typing = view.typing.filter((name) => name !== frame.username);
        this.emit("conversation", view.id);
      }, TYPING_SHOWN_MS),
    );
    this.dispatchEvent(new CustomEvent("typing", { detail: { conversation: frame.conversation, username: frame.username } }));
    this.emit("conversation", view.id);
  },
};

function describe(error) {
  return error?.code ? reasonFor(error.code, error.details ?? {}) : String(error?.message ?? error);
}

