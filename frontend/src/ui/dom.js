// Tiny DOM helpers for the chat UI.
//
// Every piece of user-controlled text (usernames, titles, message bodies, reasons) reaches
// the page through text nodes only: there is no innerHTML anywhere in the UI, so a message
// body can never become markup. Styling is by class names from app.css (no inline styles,
// which a strict Content-Security-Policy would refuse), and listeners are attached here in
// JS (no inline handlers, which the CSP would refuse too).

let idCounter = 0;

/**
 * Create an element.
 *
 * `attrs` keys:
 * - `class`: class name string (falsy parts of an array are dropped);
 * - `on<event>` with a function value (`onclick`, `onkeydown`, …): addEventListener;
 * - `value`, `checked`, `disabled`, `hidden`, `open`, `selected`: set as properties;
 * - anything else: setAttribute (`true` → empty attribute; `null`, `undefined`, `false`
 *   → left out).
 * Children: strings and numbers become text nodes, arrays are flattened, null / false /
 * undefined are skipped.
 *
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") {
      node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (PROPERTIES.has(name)) {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "open", "selected"]);

/** Append children (same rules as `el`) to a node. */
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Set a node's text, changing the existing text node in place when there is one: a live
 * region (the message log) then sees a text change, not an added node, so a delivery
 * update ("sent" → "delivered to 2 of 3") is not read out as a new message.
 * @param {Element} node
 * @param {string} text
 */
export function setText(node, text) {
  const value = String(text ?? "");
  const first = node.firstChild;
  if (first && first === node.lastChild && first.nodeType === Node.TEXT_NODE) {
    if (first.nodeValue !== value) first.nodeValue = value;
  } else {
    node.textContent = value;
  }
}

/**
 * A document-unique id for aria-labelledby / aria-describedby / label[for] pairs.
 * @param {string} prefix
 * @returns {string}
 */
export function uniqueId(prefix) {
  idCounter += 1;
  return `sc-${prefix}-${idCounter}`;
}

/**
 * Text for screen readers only (the `.sr-only` class hides it visually, not from them).
 * @param {string} text
 * @returns {HTMLElement}
 */
export function srOnly(text) {
  return el("span", { class: "sr-only" }, text);
}

/**
 * Open a modal `<dialog>` labelled by its own heading, with a close button
 * (`data-testid="dialog-close"`). Esc closes it (the browser's `cancel`), focus goes back
 * to whatever had it before, and the element is removed from the page once closed.
 *
 * @param {object} options
 * @param {Element} options.host where to attach the dialog (inside the app root)
 * @param {string} options.title heading text
 * @param {string} options.testid data-testid of the dialog
 * @param {string} [options.className] extra class
 * @param {string} [options.description] optional sentence under the heading (aria-describedby)
 * @param {(dialog: HTMLDialogElement) => void} [options.onClose] called once when closed
 * @returns {{dialog: HTMLDialogElement, body: HTMLElement, heading: HTMLElement, close: () => void}}
 */
export function openDialog({ host, title, testid, className, description, onClose }) {
  const headingId = uniqueId("dialog-title");
  const descriptionId = description ? uniqueId("dialog-desc") : null;
  const returnFocus = document.activeElement;
  const heading = el("h2", { id: headingId, class: "dialog-title" }, title);
  const body = el("div", { class: "dialog-body" });
  const closeButton = el(
    "button",
    {
      type: "button",
      class: "icon-button dialog-close",
      "data-testid": "dialog-close",
      "aria-label": "Close",
    },
    el("span", { "aria-hidden": "true" }, "×"),
  );
  const dialog = el(
    "dialog",
    {
      class: ["dialog", className],
      "data-testid": testid,
      "aria-labelledby": headingId,
      "aria-describedby": descriptionId,
    },
    el("div", { class: "dialog-header" }, heading, closeButton),
    description ? el("p", { id: descriptionId, class: "dialog-description" }, description) : null,
    body,
  );
  let closed = false;
  // Closing is done here, synchronously, rather than in the dialog's "close" event: that
  // event is queued for later, and a caller (or a test) that closes a dialog expects it
  // gone at once.
  const close = () => {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    if (onClose) onClose(dialog);
    if (returnFocus && returnFocus.isConnected && typeof returnFocus.focus === "function") {
      returnFocus.focus();
    }
  };
  closeButton.addEventListener("click", close);
  // Esc (the browser's "cancel") takes the same path as the close button.
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  dialog.addEventListener("close", close);
  // A click on the backdrop lands on the dialog element itself (its content is padded
  // inside a child): treat it like the close button, as users expect of a modal.
  dialog.addEventListener("mousedown", (event) => {
    if (event.target === dialog) close();
  });
  host.append(dialog);
  dialog.showModal();
  return { dialog, body, heading, close };
}

const keyedNodes = new WeakMap();

/**
 * Keep a container's children in step with a list of items, reusing the element of each
 * key: focus, scroll position and screen-reader context survive an update, and only the
 * items that changed are touched.
 *
 * @template T
 * @param {Element} container
 * @param {T[]} items in display order
 * @param {(item: T) => string} keyOf stable key of an item
 * @param {(item: T) => Element} create builds a new element for an item
 * @param {(node: Element, item: T) => void} update refreshes an element (also called right after create)
 */
export function syncKeyed(container, items, keyOf, create, update) {
  let nodes = keyedNodes.get(container);
  if (!nodes) {
    nodes = new Map();
    keyedNodes.set(container, nodes);
  }
  const wanted = new Set();
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    wanted.add(key);
    let node = nodes.get(key);
    if (!node) {
      node = create(item);
      nodes.set(key, node);
    }
    update(node, item);
    const expected = previous ? previous.nextSibling : container.firstChild;
    if (expected !== node) container.insertBefore(node, expected);
    previous = node;
  }
  for (const [key, node] of nodes) {
    if (!wanted.has(key)) {
      node.remove();
      nodes.delete(key);
    }
  }
}
