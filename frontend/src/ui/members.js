// The members panel: who is in the open conversation, each member's key fingerprint and
// whether I verified it, with the way to verify (the safety-number dialog).
//
// It is a panel beside the messages, not a modal: people keep reading while they compare
// numbers over the phone. Esc closes it (app.js), as does its close button.

import { el, setText, syncKeyed, uniqueId } from "./dom.js";
import { avatarHue, fingerprintLines, initial } from "./format.js";
import { openSafetyDialog } from "./safety.js";

/**
 * Build the members panel of one conversation.
 *
 * @param {object} ctx the app context (see app.js)
 * @param {string} conversationId
 * @param {{id: string, onClose: () => void}} options element id (for aria-controls) and close callback
 * @returns {{element: HTMLElement, update: () => void, focus: () => void}}
 */
export function createMembersPanel(ctx, conversationId, { id, onClose }) {
  const { session } = ctx;
  const headingId = uniqueId("members-heading");
  const heading = el("h3", { id: headingId, class: "panel-title", tabindex: "-1" }, "Members");
  const summary = el("p", { class: "panel-intro" });
  const list = el("ul", { class: "member-list", "aria-labelledby": headingId });
  const element = el(
    "section",
    { class: "members-panel", id, "data-testid": "members-panel", "aria-labelledby": headingId },
    el(
      "div",
      { class: "panel-header" },
      heading,
      el(
        "button",
        {
          type: "button",
          class: "icon-button",
          "data-testid": "panel-close",
          "aria-label": "Close members",
          onclick: () => onClose(),
        },
        el("span", { "aria-hidden": "true" }, "×"),
      ),
    ),
    summary,
    list,
    el(
      "p",
      { class: "panel-help" },
      "To verify someone, compare your safety number with theirs in person or on a call you trust. Once verified, a change of their key is flagged.",
    ),
  );

  const render = (trustList) => {
    const conversation = session.state.conversations.get(conversationId);
    if (!conversation) return;
    const byName = new Map((trustList || []).map((entry) => [entry.username, entry]));
    const members = conversation.members
      .map((member) => ({
        ...member,
        trust: byName.get(member.username) || {
          username: member.username,
          fingerprint: null,
          verified: false,
          keyChanged: false,
          me: member.username === session.me,
        },
      }))
      .sort((a, b) => {
        if (a.trust.me !== b.trust.me) return a.trust.me ? -1 : 1;
        // Problems first: a changed key is what the user opened this panel to look at.
        if (a.trust.keyChanged !== b.trust.keyChanged) return a.trust.keyChanged ? -1 : 1;
        return (a.displayName || a.username).localeCompare(b.displayName || b.username);
      });
    const others = members.filter((member) => !member.trust.me);
    const verified = others.filter((member) => member.trust.verified && !member.trust.keyChanged).length;
    const changed = others.filter((member) => member.trust.keyChanged).length;
    let text = `${verified} of ${others.length} ${others.length === 1 ? "member" : "members"} verified.`;
    if (changed)
      text += ` ${changed === 1 ? "One key has" : `${changed} keys have`} changed since you verified.`;
    setText(summary, text);
    syncKeyed(
      list,
      members,
      (member) => member.username,
      (member) => createMemberItem(ctx, member.username),
      (node, member) => updateMemberItem(node, member),
    );
  };

  const update = () => {
    let answer;
    try {
      answer = session.memberTrust(conversationId);
    } catch (error) {
      answer = [];
      ctx.notify("error", "Could not read the members' keys.");
    }
    // The contract makes memberTrust synchronous; accept a promise too, so the panel
    // does not break if the engine ever needs to fetch a certificate first.
    if (answer && typeof answer.then === "function") answer.then(render, () => render([]));
    else render(answer);
  };

  update();

  return {
    element,
    update,
    focus() {
      heading.focus();
    },
  };
}

function createMemberItem(ctx, username) {
  const avatar = el("span", { class: "avatar avatar-small", "aria-hidden": "true" });
  const name = el("span", { class: "member-name" });
  const handle = el("span", { class: "member-handle" });
  const state = el("span", { class: "member-state" });
  const fingerprint = el("code", { class: "fingerprint" });
  const fingerprintLabel = el("span", { class: "fingerprint-label" }, "Key fingerprint");
  const safety = el(
    "button",
    {
      type: "button",
      class: "button button-small",
      "data-testid": `safety-${username}`,
      onclick: () => openSafetyDialog(ctx, username),
    },
    "Safety number",
  );
  const node = el(
    "li",
    { class: "member", "data-testid": `member-${username}` },
    el("div", { class: "member-row" }, avatar, el("div", { class: "member-lines" }, name, handle), state),
    el("div", { class: "member-key" }, fingerprintLabel, fingerprint),
    el("div", { class: "member-actions" }, safety),
  );
  Object.assign(node, {
    _avatar: avatar,
    _name: name,
    _handle: handle,
    _state: state,
    _fingerprint: fingerprint,
    _safety: safety,
  });
  return node;
}

function updateMemberItem(node, member) {
  const { trust } = member;
  const shown = member.displayName || member.username;
  setText(node._avatar, initial(shown));
  node._avatar.dataset.hue = String(avatarHue(member.username));
  setText(node._name, trust.me ? `${shown} (you)` : shown);
  const role = member.role && member.role !== "member" ? ` · ${member.role}` : "";
  setText(node._handle, `@${member.username}${role}`);
  node.dataset.verified = trust.verified ? "true" : "false";
  node.dataset.keyChanged = trust.keyChanged ? "true" : "false";

  let state = "unverified";
  let label = "Not verified";
  if (trust.me) {
    state = "me";
    label = "Your key";
  } else if (trust.keyChanged) {
    state = "changed";
    label = "Key changed";
  } else if (trust.verified) {
    state = "verified";
    label = "Verified";
  }
  node._state.dataset.state = state;
  setText(node._state, label);

  const lines = fingerprintLines(trust.fingerprint);
  if (lines.length) {
    // One block per 4 groups, with the spaces kept between them: the element's text is
    // the fingerprint exactly as written elsewhere (copy, compare, tests).
    node._fingerprint.replaceChildren(
      ...lines
        .flatMap((line, i) => [i ? " " : null, el("span", { class: "fingerprint-line" }, line)])
        .filter(Boolean),
    );
    node._fingerprint.classList.remove("is-missing");
  } else {
    node._fingerprint.replaceChildren("No key seen yet");
    node._fingerprint.classList.add("is-missing");
  }
  node._safety.hidden = Boolean(trust.me);
  const action = trust.keyChanged ? "Review key change" : trust.verified ? "Safety number" : "Verify";
  setText(node._safety, action);
  node._safety.setAttribute("aria-label", `${action}: ${member.username}`);
}
