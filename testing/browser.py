"""Drive the system's Chromium (/usr/bin/chromium, Debian's package) with Playwright for
Python, and record what a page did wrong: CSP violations, uncaught errors, failed requests.

Playwright's own browser download (`playwright install`) is never used: it cannot be
fetched here, and Debian's Chromium is what CI installs (.ci/run).

Playwright's sync API marks its event loop as running in the main thread for as long as
it is started (between calls too), so `asyncio.run` and pytest-asyncio fail in any test
that runs meanwhile. The fixtures in conftest.py therefore start it per test module,
not per session.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright

from testing.processes import ROOT

CHROMIUM = Path(os.environ.get("SECURECHAT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
FRONTEND_MANIFEST = ROOT / "web" / "static" / "web" / "dist" / "manifest.json"
NOT_BUILT = "the front-end is not built: run make test (it builds the front-end)"

# Reported to Python through an exposed binding, which survives navigations (a page's
# own variables do not).
_VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__securechatCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
      + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`
  );
});
"""
_CSP_CONSOLE_MARKERS = ("Content Security Policy", "Refused to")


def frontend_manifest() -> dict:
    """The build's manifest.json; RuntimeError saying what to run when there is none."""
    try:
        return json.loads(FRONTEND_MANIFEST.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"{NOT_BUILT} ({FRONTEND_MANIFEST} is missing)") from None


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless /usr/bin/chromium; RuntimeError with the install line when it is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install it (Debian: apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


@dataclass
class PageRecord:
    """What went wrong on one page. CSP violations and page errors fail the test (see
    `BrowserPages.close`); failed requests and console errors are kept for the message."""

    name: str
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if any(marker in message.text for marker in _CSP_CONSOLE_MARKERS):
            self.csp_violations.append(f"console: {message.text}")
        elif message.type == "error":
            self.console_errors.append(message.text)

    def failures(self) -> list[str]:
        return [f"CSP violation: {v}" for v in self.csp_violations] + [
            f"page error: {e}" for e in self.page_errors
        ]


class BrowserPages:
    """Fresh contexts and pages on one browser, each recorded. `close()` closes them
    and raises AssertionError if any recorded a CSP violation or a page error."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.records: dict[Page, PageRecord] = {}
        self._watched: set[Page] = set()

    def new_context(self, base_url: str | None = None, **options) -> BrowserContext:
        context = self.browser.new_context(base_url=base_url, **options)
        context.add_init_script(_VIOLATION_LISTENER)
        context.expose_binding(
            "__securechatCspViolation",
            lambda source, text: self._record_for(source["page"]).csp_violations.append(text),
        )
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def new_page(self, base_url: str | None = None, **options) -> Page:
        """A page in a context of its own (no cookies shared with other pages)."""
        page = self.new_context(base_url, **options).new_page()
        self._watch(page)
        return page

    def record(self, page: Page) -> PageRecord:
        return self._record_for(page)

    def _record_for(self, page: Page) -> PageRecord:
        if page not in self.records:
            self.records[page] = PageRecord(name=f"page {len(self.records) + 1}")
        return self.records[page]

    def _watch(self, page: Page) -> None:
        if page in self._watched:  # new_page() and the context's "page" event both call
            return
        self._watched.add(page)
        record = self._record_for(page)
        page.on("console", record.on_console)
        page.on("pageerror", lambda error: record.page_errors.append(str(error)))
        page.on(
            "requestfailed",
            lambda request: record.failed_requests.append(f"{request.url}: {request.failure}"),
        )

    def failures(self) -> list[str]:
        return [
            f"{page.url}: {failure}" for page, r in self.records.items() for failure in r.failures()
        ]

    def close(self) -> None:
        failures = self.failures()
        for context in self.contexts:
            context.close()
        self.contexts.clear()
        if failures:
            raise AssertionError("the browser recorded:\n" + "\n".join(failures))


def check_accessibility(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list:
    """axe-core's violations of `impacts` on the page as it is now: [{id, impact, help,
    targets}]. axe is injected through the DevTools protocol (page.evaluate), not as a
    script element, so the page's CSP stays enforced while it runs."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run make test (it runs npm ci in frontend/)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # A function body, so that Playwright compiles it as DevTools code: an eval()
        # from page code would be (rightly) refused by script-src without 'unsafe-eval'.
        page.evaluate("() => {\n" + AXE.read_text() + "\n}")
    violations = page.evaluate(
        """async () => {
          const result = await window.axe.run(document, { resultTypes: ["violations"] });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map((node) => node.target.join(" ")),
          }));
        }"""
    )
    return [v for v in violations if v["impact"] in impacts]


def save_screenshot(page: Page, name: str) -> Path:
    """docs/screenshots/<name>.png of the full page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def production_settings() -> dict[str, str]:
    """DEBUG=0 as production runs, over plain HTTP on loopback (no TLS here)."""
    return {
        "DEBUG": "0",
        "SECRET_KEY": "browser-tests-" + "s" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SECURECHAT_CA_PASSPHRASE": "browser-tests-ca-passphrase",
    }


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Through the login form, as a person would; returns on the page it leads to."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
