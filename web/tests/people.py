"""People using SecureChat in Chromium, for the browser tests: each one a page in a
fresh browser context (no shared cookies or IndexedDB), driven as a person would, through
the test ids the UI promises (frontend/src/ui/)."""

import re
from dataclasses import dataclass

from playwright.sync_api import Page, expect

from testing.processes import ChatStack

READY = "#app[data-ready='true']"
TIMEOUT_MS = 30_000


@dataclass
class Person:
    name: str
    password: str
    page: Page

    def by(self, testid: str):
        return self.page.get_by_test_id(testid)

    # --- accounts and keys --------------------------------------------------------

    def register(self, base_url: str) -> None:
        page = self.page
        page.goto(f"{base_url}/accounts/register/")
        page.fill("#id_username", self.name)
        page.fill("#id_display_name", self.name.title())
        page.fill("#id_password1", self.password)
        page.fill("#id_password2", self.password)
        with page.expect_navigation():
            page.click("#register-form button[type=submit]")
        expect(self.by("keysetup")).to_be_visible(timeout=TIMEOUT_MS)

    def log_in(self, base_url: str) -> None:
        page = self.page
        page.goto(f"{base_url}/accounts/login/")
        page.fill("#id_username", self.name)
        page.fill("#id_password", self.password)
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")

    def make_keys(self, algorithm: str = "ed25519") -> None:
        """On the key screen: choose the algorithm, protect the backup with the login password."""
        self.by(f"algorithm-{algorithm}").check()
        self.by("protector-login").check()
        self.by("backup-passphrase").fill(self.password)
        self.by("backup-passphrase-confirm").fill(self.password)
        self.by("keysetup-submit").click()
        self.wait_ready()

    def restore_keys(self) -> None:
        self.by("restore-passphrase").fill(self.password)
        self.by("restore-submit").click()
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.wait_for_selector(READY, timeout=60_000)
        expect(self.by("chat-app")).to_be_visible()

    # --- chatting -------------------------------------------------------------------

    def sees_online(self, other: str) -> None:
        expect(self.by(f"online-user-{other}")).to_have_attribute(
            "data-online", "true", timeout=TIMEOUT_MS
        )

    def sees_offline(self, other: str) -> None:
        """Gone from the online list, and shown offline among the contacts."""
        expect(self.by(f"online-user-{other}")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(self.by(f"contact-{other}")).to_have_attribute("data-online", "false")

    def start_conversation(self, usernames: list[str], title: str, origin: str = "server") -> str:
        self.by("new-conversation").click()
        self.by("newconv-usernames").fill(" ".join(usernames))
        self.by("newconv-title").fill(title)
        self.by(f"newconv-origin-{origin}").check()
        self.by("newconv-submit").click()
        expect(self.by("conversation-title")).to_have_text(title, timeout=TIMEOUT_MS)
        return self.open_conversation_id()

    def open_conversation_id(self) -> str:
        item = self.page.locator("li.conversation-item:has(> button[aria-current='page'])")
        testid = item.first.get_attribute("data-testid", timeout=TIMEOUT_MS)
        return testid.removeprefix("conversation-")

    def open(self, conversation_id: str) -> None:
        self.by(f"conversation-{conversation_id}").click()

    def send(self, text: str) -> None:
        self.by("composer").fill(text)
        self.by("composer").press("Enter")
        self.message(text).wait_for(timeout=TIMEOUT_MS)
        expect(self.message(text)).to_have_attribute("data-status", "ok", timeout=TIMEOUT_MS)

    def messages(self):
        return self.by("message-list").get_by_test_id("message")

    def message(self, text: str):
        return self.messages().filter(
            has=self.page.get_by_test_id("message-text").filter(
                has_text=re.compile(f"^{re.escape(text)}$")
            )
        )

    def sees_verified_message(self, sender: str, text: str) -> None:
        """Shown with every check passed (status ok, no problem), from `sender`."""
        message = self.message(text)
        expect(message).to_have_count(1, timeout=TIMEOUT_MS)
        expect(message).to_have_attribute("data-status", "ok")
        expect(message).to_have_attribute("data-problem", "")
        expect(message).to_have_attribute("data-sender", sender)

    def texts(self) -> list[str]:
        return self.by("message-list").get_by_test_id("message-text").all_inner_texts()


def person(pages, stack: ChatStack, name: str) -> Person:
    return Person(name, stack.password(name), pages.new_page(stack.url))
