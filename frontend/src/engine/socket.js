/**
 * The chat WebSocket that comes back (protocol.md §7): requests with ids and one reply
 * each, server events handed to a callback, reconnection with exponential backoff and
 * jitter, and a state the page can show. What was missed while away is the session's to
 * fetch when the state is "online" again.
 */

/** Close codes after which reconnecting cannot help: not authenticated, session ended, flooding, too many connections. */
const FINAL_CLOSE_CODES = new Set([4001, 4003, 4008, 4009]);
const FIRST_DELAY = 0.2;
const MAX_DELAY = 5;
const REQUEST_TIMEOUT_MS = 10_000;

/** Seconds to wait before reconnect attempt `attempt` (0-based): 0.2 s doubling to 5 s, ±50 %. */
export function backoff(attempt) {
  const jitter = 0.5 + Math.random(); // timing jitter, not a secret
  return Math.min(MAX_DELAY, FIRST_DELAY * 2 ** attempt) * jitter;
}

/** An error answered by the server (`code` from protocol.md §4.5) or by the connection. */
export class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

export class LiveSocket {
  /**
   * @param {string} url ws(s)://host/ws/chat/
   * @param {{onEvent: (frame: object) => void, onState: (state: string, retryInSeconds: number|null) => void}} handlers
   */
  constructor(url, { onEvent, onState }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.state = "connecting";
    this.ws = null;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.waiters = []; // requests waiting for the socket to be open
    this.nextId = 1;
    this.attempt = 0;
    this.closing = false;
  }

  open() {
    this.setState(this.attempt ? "reconnecting" : "connecting", null);
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.setState("online", null);
      for (const wake of this.waiters.splice(0)) wake();
    });
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event.code));
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the server only sends JSON; anything else is ignored
    }
    if (frame.id != null && this.pending.has(frame.id)) {
      const { resolve, reject, timer } = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      clearTimeout(timer);
      if (frame.type === "error") reject(new ProtocolError(frame.code, frame.message));
      else resolve(frame);
      return;
    }
    this.onEvent(frame);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    for (const [, { reject, timer }] of this.pending) {
      clearTimeout(timer);
      reject(new ProtocolError("closed", "The connection dropped before the answer."));
    }
    this.pending.clear();
    if (this.closing || FINAL_CLOSE_CODES.has(code)) {
      this.setState("closed", null);
      for (const wake of this.waiters.splice(0)) wake();
      return;
    }
    const delay = backoff(this.attempt);
    this.attempt += 1;
    this.setState("reconnecting", Math.ceil(delay));
    setTimeout(() => this.open(), delay * 1000);
  }

  setState(state, retryInSeconds) {
    this.state = state;
    this.onState(state, retryInSeconds);
  }

  /** Wait (up to the timeout) for an open socket: requests made while reconnecting go out once it is back. */
  async ready(timeoutMs) {
    if (this.state === "online") return;
    if (this.state === "closed") throw new ProtocolError("closed", "The connection is closed.");
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ProtocolError("timeout", "Still offline.")), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.state !== "online") throw new ProtocolError("closed", "The connection is closed.");
  }

  /** Send a request and resolve with its reply frame (reject with ProtocolError). */
  async request(type, fields = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    await this.ready(timeoutMs);
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ProtocolError("timeout", `No answer to ${type}.`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }

  /** Fire and forget (typing): dropped while offline. */
  notify(type, fields = {}) {
    if (this.state === "online") this.ws.send(JSON.stringify({ type, id: `n${this.nextId++}`, ...fields }));
  }

  close() {
    this.closing = true;
    this.ws?.close();
  }
}
