// JSON calls to the SecureChat server over same-origin fetch, with Django's conventions:
// the session cookie authenticates, the `csrftoken` cookie's value goes back in the
// X-CSRFToken header on unsafe methods, errors arrive as {"code", "message"} with a 4xx.

/** Django's default timeout for the Python client is 30 s; the browser waits as long. */
const TIMEOUT_MS = 30_000;

/**
 * A refused or failed HTTP call. `code` is the server's stable code (protocol.md §2), or
 * `network_error` / `http_error` when no JSON error body came back.
 */
export class HttpError extends Error {
  /**
   * @param {number} status HTTP status (0 when no answer arrived at all)
   * @param {string} code stable machine code
   * @param {string} message sentence for people, as the server wrote it
   */
  constructor(status, code, message) {
    super(message || code);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

/**
 * The value of the `csrftoken` cookie, or "" when there is none.
 * @param {string} [cookies] a `document.cookie` string (defaults to this page's cookies)
 * @returns {string}
 */
export function csrfTokenFromCookie(cookies = globalThis.document?.cookie ?? "") {
  for (const part of cookies.split(";")) {
    const separator = part.indexOf("=");
    if (separator < 0) continue;
    if (part.slice(0, separator).trim() === "csrftoken") {
      return decodeURIComponent(part.slice(separator + 1).trim());
    }
  }
  return "";
}

// Only paths on this origin: a caller handing a full URL (or a protocol-relative `//host`)
// would send the session cookie's CSRF token somewhere else.
function checkPath(path) {
  if (typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) {
    throw new TypeError("An API path must start with a single '/'.");
  }
}

async function errorFrom(response) {
  let code = "http_error";
  let message = `The server answered ${response.status}.`;
  try {
    const body = await response.json();
    if (body && typeof body.code === "string") code = body.code;
    if (body && typeof body.message === "string") message = body.message;
  } catch {
    // Not JSON (a proxy's error page, Django's HTML CSRF failure page): keep the defaults.
  }
  return new HttpError(response.status, code, message);
}

/**
 * A small JSON client for this origin's API.
 * @param {object} [options]
 * @param {string | (() => string)} [options.csrfToken] the CSRF token, or a function that
 *   reads it at each call (default: read the `csrftoken` cookie at each call, so a token
 *   Django rotates at login is picked up)
 * @param {typeof fetch} [options.fetch] the fetch to use (default: the global one)
 * @param {string} [options.baseUrl] prefix for paths (default "", this origin); tests in
 *   Node point it at a local server
 * @returns {{getJson: (path: string) => Promise<any>,
 *   postJson: (path: string, body: any) => Promise<any>,
 *   putJson: (path: string, body: any) => Promise<any>}}
 */
export function createHttp({ csrfToken, fetch: fetchImpl, baseUrl = "" } = {}) {
  const doFetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
  const token = () => {
    if (typeof csrfToken === "function") return csrfToken();
    return csrfToken ?? csrfTokenFromCookie();
  };

  async function call(method, path, body) {
    checkPath(path);
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", redirect: "error" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = token();
      init.body = JSON.stringify(body ?? {});
    }
    if (typeof AbortSignal.timeout === "function") init.signal = AbortSignal.timeout(TIMEOUT_MS);
    let response;
    try {
      response = await doFetch(baseUrl + path, init);
    } catch (error) {
      const code = error?.name === "TimeoutError" ? "timeout" : "network_error";
      throw new HttpError(0, code, "The server could not be reached.");
    }
    if (!response.ok) throw await errorFrom(response);
    if (response.status === 204) return null;
    try {
      return await response.json();
    } catch {
      throw new HttpError(response.status, "invalid_response", "The server's answer is not JSON.");
    }
  }

  return {
    getJson: (path) => call("GET", path),
    postJson: (path, body) => call("POST", path, body),
    putJson: (path, body) => call("PUT", path, body),
  };
}
