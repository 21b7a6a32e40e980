/**
 * The chat page's entry: make sure this browser holds the user's keys (made here,
 * restored from the backup, or already stored), then start the session and the UI.
 */

import { ChatSession } from "./engine/session.js";
import { loadState, saveState } from "./keys/keystore.js";
import { ensureKeys } from "./keys/setup.js";
import { createHttp, csrfTokenFromCookie } from "./net/http.js";
import { mountChat } from "./ui/app.js";
import { createKeySetupUi } from "./ui/keysetup.js";

async function startChat(root) {
  const username = root.dataset.username;
  const http = createHttp({ csrfToken: csrfTokenFromCookie() });
  const keys = await ensureKeys({ http, username, ui: createKeySetupUi(root) });
  const store = {
    load: (name) => loadState(username, name),
    save: (name, value) => saveState(username, name, value),
  };
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const session = new ChatSession({
    me: username,
    keys,
    http,
    store,
    wsUrl: `${scheme}//${window.location.host}/ws/chat/`,
  });
  root.replaceChildren();
  mountChat(root, session);
  await session.start();
  // For the measurements in the README: login -> chat ready with keys (not a test timing).
  performance.mark("securechat-ready");
  root.dataset.ready = "true";
}

const root = document.getElementById("app");
if (root) {
  startChat(root).catch((error) => {
    const problem = document.createElement("p");
    problem.className = "fatal-error";
    problem.setAttribute("role", "alert");
    problem.dataset.testid = "fatal-error";
    problem.textContent = `SecureChat could not start: ${error?.message ?? error}`;
    root.replaceChildren(problem);
  });
}
