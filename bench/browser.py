"""Browser figures for the README (measured, never asserted): the chat page's JavaScript
size, login to a ready chat page (keys in IndexedDB, and keys restored from the backup),
and send-to-shown latency between two Chromium pages.

    .venv/bin/python bench/browser.py [--messages 30]

Runs its own redis-server and daphne (production settings), Debian's /usr/bin/chromium.
Prints a table and writes bench/results/browser.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from testing.browser import frontend_manifest, launch_chromium, production_settings  # noqa: E402
from testing.processes import ChatStack, RedisServer  # noqa: E402
from web.tests.people import READY, Person  # noqa: E402

# Records when each message text first appears in the page, on the page's own clock.
SEEN_OBSERVER = """() => {
  window.__seen = {};
  new MutationObserver(() => {
    for (const node of document.querySelectorAll("[data-testid='message-text']")) {
      if (!(node.textContent in window.__seen)) window.__seen[node.textContent] = Date.now();
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bundle_sizes() -> dict:
    manifest = frontend_manifest()
    files = manifest.get("files", manifest)
    return {"manifest": files}


def measure(stack: ChatStack, browser, messages: int) -> dict:
    def new_person(name: str) -> Person:
        return Person(name, stack.password(name), browser.new_context().new_page())

    alice, bob = new_person("alice"), new_person("bob")
    for someone in (alice, bob):
        someone.register(stack.url)
        someone.make_keys()
    alice.sees_online("bob")
    conversation = alice.start_conversation(["bob"], "Bench")
    bob.open(conversation)
    bob.page.evaluate(SEEN_OBSERVER)
    latencies = []
    for n in range(messages):
        text = f"bench message {n}"
        alice.by("composer").fill(text)
        sent_at = alice.page.evaluate("() => Date.now()")
        alice.by("composer").press("Enter")
        bob.message(text).wait_for(timeout=30_000)
        shown_at = bob.page.evaluate("(text) => window.__seen[text]", text)
        latencies.append(shown_at - sent_at)

    # Login to ready: keys already in this browser (a reload of the session's page).
    reload_ms = []
    for _ in range(5):
        started = time.monotonic()
        bob.page.reload()
        bob.page.wait_for_selector(READY, timeout=60_000)
        reload_ms.append((time.monotonic() - started) * 1000)

    # A new browser: log in, restore from the backup (PBKDF2 600,000 iterations), ready.
    restore_ms, login_ms = [], []
    for _ in range(3):
        fresh = new_person("bob")
        started = time.monotonic()
        fresh.log_in(stack.url)
        fresh.by("restore-passphrase").wait_for(timeout=30_000)
        login_ms.append((time.monotonic() - started) * 1000)
        fresh.by("restore-passphrase").fill(fresh.password)
        started = time.monotonic()
        fresh.by("restore-submit").click()
        fresh.page.wait_for_selector(READY, timeout=60_000)
        restore_ms.append((time.monotonic() - started) * 1000)
        fresh.page.context.close()
    return {
        "send_to_shown_ms": {
            "n": len(latencies),
            "p50": statistics.median(latencies),
            "p95": percentile(latencies, 95),
            "max": max(latencies),
        },
        "reload_to_ready_ms": {"median": statistics.median(reload_ms), "max": max(reload_ms)},
        "login_to_restore_screen_ms": {"median": statistics.median(login_ms)},
        "restore_to_ready_ms": {"median": statistics.median(restore_ms), "max": max(restore_ms)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30)
    args = parser.parse_args()
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    with tempfile.TemporaryDirectory(prefix="securechat-bench-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis")
        (Path(tmp) / "var").mkdir()
        stack = ChatStack(Path(tmp) / "var", redis_server.url, **production_settings())
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                figures = measure(stack, browser, args.messages)
                browser.close()
        finally:
            stack.stop()
            redis_server.stop()
    figures["bundle"] = bundle_sizes()
    out = ROOT / "bench" / "results" / "browser.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps({k: v for k, v in figures.items() if k != "bundle"}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
