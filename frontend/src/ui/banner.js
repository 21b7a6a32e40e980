// The connection banner: shown while the socket is not online, gone when it is.
//
// The engine says how many seconds remain until its next try when it starts waiting; the
// banner counts down locally from that so the number moves every second without the
// engine having to send an event per second.

import { el, setText } from "./dom.js";

/**
 * Create the banner controller. The banner element only exists in the page while the
 * connection is not online (tests and users see it appear and disappear).
 *
 * @param {Element} slot where the banner is placed
 * @returns {{update: (state: {connection: string, retryInSeconds: number|null}) => void, destroy: () => void}}
 */
export function createConnectionBanner(slot) {
  let banner = null;
  let text = null;
  let timer = null;
  let deadline = null;
  let connection = null;

  const stopTimer = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };

  const render = () => {
    if (!banner) return;
    setText(text, bannerText(connection, deadline));
    banner.dataset.connection = connection;
  };

  return {
    update({ connection: next, retryInSeconds }) {
      connection = next;
      if (connection === "online") {
        stopTimer();
        deadline = null;
        if (banner) banner.remove();
        banner = null;
        return;
      }
      deadline = Number.isFinite(retryInSeconds) ? Date.now() + retryInSeconds * 1000 : null;
      if (!banner) {
        text = el("span", { class: "banner-text" });
        banner = el(
          "div",
          {
            class: "connection-banner",
            role: "status",
            // Announced once when it appears; the per-second countdown changes the text
            // node in place (a "text" change), which screen readers are not told about.
            "aria-relevant": "additions",
            "data-testid": "connection-banner",
          },
          el("span", { class: "banner-dot", "aria-hidden": "true" }),
          text,
        );
        slot.append(banner);
      }
      banner.classList.toggle("is-closed", connection === "closed");
      stopTimer();
      if (deadline !== null) timer = setInterval(render, 1000);
      render();
    },
    destroy() {
      stopTimer();
      if (banner) banner.remove();
      banner = null;
    },
  };
}

/**
 * The banner's sentence.
 * @param {string} connection
 * @param {number|null} deadline ms timestamp of the next try, or null
 * @returns {string}
 */
function bannerText(connection, deadline) {
  if (connection === "connecting") return "Connecting…";
  if (connection === "closed") return "Disconnected — reload the page to reconnect";
  if (deadline === null) return "Connection lost — reconnecting…";
  const seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
  if (seconds === 0) return "Connection lost — reconnecting now…";
  return `Connection lost — reconnecting in ${seconds} s`;
}
