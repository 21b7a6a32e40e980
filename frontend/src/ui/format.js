// Words and times shown by the chat UI, in one place so every view says the same thing.
//
// Nothing here builds markup: each function returns plain strings that the views put in
// text nodes.

const MINUTE = 60 * 1000;
const DAY = 24 * 60 * MINUTE;

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const weekdayTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const dateTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const fullDateTime = new Intl.DateTimeFormat(undefined, {
  dateStyle: "long",
  timeStyle: "medium",
});

/**
 * Short time for a message line: "14:03" today, "Tue 14:03" within the week, else a date.
 * @param {number|null|undefined} ms milliseconds since the epoch
 * @param {number} [now]
 * @returns {string}
 */
export function formatTime(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  const today = new Date(now);
  if (date.toDateString() === today.toDateString()) return timeOnly.format(date);
  // A sender's clock may run ahead: a "future" time is shown as a date, never as "Tue".
  if (ms < now && now - ms < 6 * DAY) return weekdayTime.format(date);
  return dateTime.format(date);
}

/**
 * Long form of a time (tooltips, the inspector).
 * @param {number|string|null|undefined} value ms since the epoch or an ISO string
 * @returns {string}
 */
export function formatFullTime(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = typeof value === "number" ? new Date(value) : new Date(String(value));
  if (Number.isNaN(date.getTime())) return String(value);
  return fullDateTime.format(date);
}

/**
 * The tooltip of a message's time: the sender's claim is what is shown (it is signed),
 * the server's storage time is added because the two can differ (clocks drift, §6).
 * @param {{timestampMs: number, sentAt: string|null}} message
 * @returns {string}
 */
export function timeTooltip(message) {
  const parts = [];
  if (Number.isFinite(message.timestampMs)) {
    parts.push(`Written ${formatFullTime(message.timestampMs)} (sender's clock)`);
  }
  if (message.sentAt) parts.push(`stored ${formatFullTime(message.sentAt)} (server)`);
  return parts.join("; ");
}

/**
 * Delivery line under one of my messages: "sending…", "sent", "delivered to n of m".
 * Lower case on purpose: it reads as the tail of the message's meta line.
 * @param {{status: string, delivery?: {state: string, deliveredTo: number, of: number}|null}} message
 * @returns {string}
 */
export function deliveryText(message) {
  if (message.status === "failed") return "not sent";
  const delivery = message.delivery;
  if (!delivery || delivery.state === "sending" || message.status === "sending") return "sending…";
  if (delivery.state === "delivered" && delivery.of > 0) {
    return `delivered to ${delivery.deliveredTo} of ${delivery.of}`;
  }
  return "sent";
}

// Short badge labels for the problem codes a message can carry (the full sentence is the
// engine's `reason`, shown next to the badge). Unknown codes fall back to a generic label.
const PROBLEM_LABELS = {
  bad_signature: "Signature failed",
  key_changed: "Key changed",
  certificate_revoked: "Certificate revoked",
  certificate_expired: "Certificate expired",
  certificate_superseded: "Old certificate",
  certificate_invalid: "Certificate invalid",
  wrong_certificate: "Wrong certificate",
  unknown_certificate: "Unknown certificate",
  not_member: "Not a member",
  replayed: "Replayed",
  no_epoch_key: "Key missing",
  decrypt_failed: "Could not decrypt",
  bad_body: "Unreadable content",
  epoch_pending: "Waiting for key",
  stale_epoch: "Old key",
  unavailable: "Server busy",
};

/**
 * Short label for a problem code ("Signature failed", "Key changed", …).
 * @param {string} code
 * @returns {string}
 */
export function problemLabel(code) {
  return PROBLEM_LABELS[code] || "Check failed";
}

/**
 * The sentence explaining a problem: the engine's reason (a closed list of sentences),
 * else a generic one built from the code.
 * @param {{code: string, reason?: string}|null} problem
 * @returns {string}
 */
export function reasonText(problem) {
  if (!problem) return "";
  if (problem.reason) return problem.reason;
  return `${problemLabel(problem.code)} (${problem.code})`;
}

// Sentences for errors of user actions (create, invite, accept, leave, …), by protocol
// error code (docs/protocol.md §4.5). The engine's own message is used for anything else.
const ERROR_TEXTS = {
  unknown_user: "There is no user with that name.",
  already_member: "That person is already in this conversation.",
  not_member: "You are not a member of this conversation.",
  not_owner: "Only the conversation's creator can do that.",
  not_found: "That conversation or invitation no longer exists.",
  invitation_closed: "That invitation was already answered or cancelled.",
  invitation_stale: "The member list changed since this invitation was made: ask for a new one.",
  not_invitee: "That invitation is for someone else.",
  no_active_keys: "Everyone involved needs set-up keys first.",
  keys_changed: "That person's keys changed: ask them to check, then try again.",
  rate_limited: "Too many requests at once: wait a moment and try again.",
  unavailable: "The server is busy for a moment: try again.",
  epoch_pending: "Waiting for a new key from a member: try again in a moment.",
};

/**
 * A sentence for an Error from the engine (which carries `.code` and `.message`).
 * @param {any} error
 * @param {string} [fallback]
 * @returns {string}
 */
export function errorText(error, fallback = "Something went wrong.") {
  if (!error) return fallback;
  if (error.code && ERROR_TEXTS[error.code]) return ERROR_TEXTS[error.code];
  return error.message || fallback;
}

/**
 * The conversation-level verification state in words.
 * @param {"verified"|"unverified"|"degraded"|string} trust
 * @returns {string}
 */
export function trustText(trust) {
  if (trust === "verified") return "All members verified";
  if (trust === "degraded") return "A member's key changed";
  return "Not all members verified";
}

/**
 * How the conversation's keys are made, in a few words.
 * @param {"server"|"members"|string} keyOrigin
 * @returns {string}
 */
export function originText(keyOrigin) {
  return keyOrigin === "members" ? "Keys made by members" : "Keys made by the server";
}

/**
 * One sentence per key origin, for the new-conversation dialog.
 */
export const ORIGIN_SENTENCES = {
  server:
    "The server makes each key and hands it to the members, so keys are ready at once even when nobody else is online — but the server could read this conversation.",
  members:
    "A member's device makes each key and encrypts it for the others, so the server can never read this conversation; a new key waits until a member is online.",
};

/**
 * A user's name to show: the display name when there is one, else the username.
 * @param {Map<string, {displayName?: string}>|undefined} users
 * @param {string} username
 * @returns {string}
 */
export function displayName(users, username) {
  const user = users && users.get(username);
  return (user && user.displayName) || username;
}

/**
 * A conversation's title, or its other members' names when it has none.
 * @param {{title?: string, members?: {username: string, displayName?: string}[]}} conversation
 * @param {string} me
 * @returns {string}
 */
export function conversationTitle(conversation, me) {
  if (conversation.title) return conversation.title;
  const others = (conversation.members || []).filter((member) => member.username !== me);
  if (others.length === 0) return "Just you";
  const names = others.map((member) => member.displayName || member.username);
  if (names.length <= 3) return names.join(", ");
  return `${names.slice(0, 3).join(", ")} and ${names.length - 3} more`;
}

/**
 * "alice is typing…", "alice and bob are typing…", "3 people are typing…".
 * @param {string[]} names display names
 * @returns {string}
 */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/**
 * Split usernames typed into one field, separated by commas and/or spaces; a leading "@"
 * is dropped and duplicates are removed (first spelling kept).
 * @param {string} text
 * @returns {string[]}
 */
export function parseUsernames(text) {
  const seen = new Set();
  const names = [];
  for (const part of String(text).split(/[\s,;]+/)) {
    const name = part.replace(/^@/, "");
    if (name && !seen.has(name)) {
      seen.add(name);
      names.push(name);
    }
  }
  return names;
}

/** Django usernames: letters, digits and @.+-_, at most 150 characters (protocol §1). */
export const USERNAME_PATTERN = /^[\p{L}\p{M}\p{N}_.@+-]{1,150}$/u;

/**
 * Lines of a fingerprint for display: 16 groups of 4 as 4 lines of 4 groups.
 * @param {string} fingerprint "ABCD EF01 …"
 * @returns {string[]}
 */
export function fingerprintLines(fingerprint) {
  const groups = String(fingerprint || "")
    .split(/\s+/)
    .filter(Boolean);
  const lines = [];
  for (let i = 0; i < groups.length; i += 4) lines.push(groups.slice(i, i + 4).join(" "));
  return lines;
}

/**
 * The initial shown in an avatar.
 * @param {string} name
 * @returns {string}
 */
export function initial(name) {
  const first = Array.from(String(name || "?").trim())[0] || "?";
  return first.toUpperCase();
}

/**
 * A stable avatar colour index (0-7) for a username, so a person keeps one colour.
 * @param {string} username
 * @returns {number}
 */
export function avatarHue(username) {
  let hash = 0;
  for (const char of String(username)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 8;
}

/**
 * The badge a message deserves, or null when it needs none. Quiet when all is well: a good
 * message from a verified sender, and my own messages, get nothing; a good message from an
 * unverified (but unchanged) sender gets a subtle neutral mark; a changed key is a
 * warning; a failed check is an error carrying its own label (the reason sentence is shown
 * beside it).
 *
 * @param {{mine: boolean, status: string, problem: {code: string, reason?: string}|null,
 *   signer?: {verified: boolean, keyChanged: boolean}|null}} message
 * @returns {{level: "neutral"|"info"|"warning"|"error", kind: string, label: string}|null}
 */
export function badgeFor(message) {
  if (message.status === "retrying") {
    return { level: "info", kind: "retrying", label: "Retrying" };
  }
  if (message.status === "failed" || (message.problem && message.status !== "sending")) {
    if (message.problem) {
      return { level: "error", kind: message.problem.code, label: problemLabel(message.problem.code) };
    }
    return { level: "error", kind: "failed", label: message.mine ? "Not sent" : "Check failed" };
  }
  if (message.mine) return null;
  const signer = message.signer;
  if (signer && signer.keyChanged) return { level: "warning", kind: "key_changed", label: "Key changed" };
  if (signer && !signer.verified) return { level: "neutral", kind: "unverified", label: "Unverified signer" };
  return null;
}
