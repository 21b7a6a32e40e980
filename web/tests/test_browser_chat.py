"""The browser client end to end: real Chromium, real daphne + Redis + SQLite, keys made
in the page. Every page fails its test at teardown on a CSP violation or a page error
(testing/browser.py)."""

import asyncio
import sqlite3
import threading

import pytest
from playwright.sync_api import expect

from client.securechat_client.client import ChatClient
from testing.browser import (
    check_accessibility,
    frontend_manifest,
    production_settings,
    save_screenshot,
)
from testing.processes import ChatStack, RedisServer
from web.tests.people import TIMEOUT_MS, Person, person


def start_stack(tmp_path_factory, name: str, workers: int = 1):
    try:
        frontend_manifest()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    redis_server = RedisServer(tmp_path_factory.mktemp(f"{name}-redis"))
    try:
        stack = ChatStack(
            tmp_path_factory.mktemp(f"{name}-var"),
            redis_server.url,
            workers=workers,
            **production_settings(),
        )
    except BaseException:
        redis_server.stop()
        raise
    return redis_server, stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    redis_server, stack = start_stack(tmp_path_factory, "browser")
    yield stack
    stack.stop()
    redis_server.stop()


def registered(pages, stack, name: str, algorithm: str = "ed25519") -> Person:
    someone = person(pages, stack, name)
    someone.register(stack.url)
    someone.make_keys(algorithm)
    return someone


def no_serious_accessibility_problems(page) -> None:
    problems = check_accessibility(page)
    assert problems == [], problems


def test_people_register_chat_verified_invite_and_see_presence(browser_pages, stack):
    alice = person(browser_pages, stack, "alice")
    alice.register(stack.url)
    no_serious_accessibility_problems(alice.page)
    save_screenshot(alice.page, "key-generation")
    alice.make_keys("ed25519")
    bob = registered(browser_pages, stack, "bob")

    alice.sees_online("bob")
    bob.sees_online("alice")
    conversation = alice.start_conversation(["bob"], "Launch plan")
    alice.send("Hello Bob, this is encrypted in my browser.")
    expect(bob.by(f"conversation-{conversation}")).to_have_attribute(
        "data-unread", "1", timeout=TIMEOUT_MS
    )
    bob.open(conversation)
    expect(bob.by(f"conversation-{conversation}")).to_have_attribute("data-unread", "0")
    # alice is not bob's contact: a message request, readable, until bob accepts it.
    expect(bob.by("request-notice")).to_be_visible(timeout=TIMEOUT_MS)
    bob.by("request-accept").click()
    expect(bob.by("request-notice")).to_be_hidden(timeout=TIMEOUT_MS)
    bob.sees_verified_message("alice", "Hello Bob, this is encrypted in my browser.")
    bob.send("Hi Alice, verified on my side.")
    expect(alice.by("typing-indicator")).to_contain_text("Bob", timeout=TIMEOUT_MS)
    alice.sees_verified_message("bob", "Hi Alice, verified on my side.")
    expect(
        alice.message("Hello Bob, this is encrypted in my browser.").get_by_test_id(
            "message-delivery"
        )
    ).to_have_text("delivered to 1 of 1", timeout=TIMEOUT_MS)

    carol = registered(browser_pages, stack, "carol")
    alice.sees_online("carol")
    alice.by("invite-carol").click()
    invitation = carol.page.locator(
        "[data-testid^='invitation-']:not([data-testid='invitation-list'])"
    ).filter(has_text="Launch plan")
    expect(invitation.first).to_be_visible(timeout=TIMEOUT_MS)
    save_screenshot(carol.page, "invitation")
    invitation_id = invitation.first.get_attribute("data-testid").removeprefix("invitation-")
    carol.by(f"accept-{invitation_id}").click()
    expect(carol.by("conversation-title")).to_have_text("Launch plan", timeout=TIMEOUT_MS)
    expect(
        carol.page.locator("[data-testid='message'][data-problem='not_member_then']")
    ).to_have_count(1, timeout=TIMEOUT_MS)
    assert "Hello Bob" not in " ".join(carol.texts())
    carol.send("Carol here, thanks for the invite.")
    alice.sees_verified_message("carol", "Carol here, thanks for the invite.")
    bob.sees_verified_message("carol", "Carol here, thanks for the invite.")
    no_serious_accessibility_problems(alice.page)
    save_screenshot(alice.page, "chat")

    carol.by("leave").click()
    expect(carol.by(f"conversation-{conversation}")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(alice.by("members-button")).to_contain_text("2", timeout=TIMEOUT_MS)

    bob.page.context.close()
    alice.sees_offline("bob")


def test_dsa_and_rsa_pss_users_chat_in_a_members_keyed_conversation(browser_pages, stack):
    dave = registered(browser_pages, stack, "dave", "dsa")
    erin = registered(browser_pages, stack, "erin", "rsa-pss")
    dave.sees_online("erin")
    conversation = dave.start_conversation(["erin"], "Members keyed", origin="members")
    dave.send("Signed with DSA, keyed by a member.")
    erin.open(conversation)
    erin.sees_verified_message("dave", "Signed with DSA, keyed by a member.")
    erin.send("Signed with RSA-PSS.")
    dave.sees_verified_message("erin", "Signed with RSA-PSS.")


class PythonUser:
    """The Python client library in a thread of its own (Playwright's sync API holds the
    main thread's event loop)."""

    def __init__(self, base_url: str, name: str, password: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = ChatClient(base_url)
        self.run(self._start(name, password))

    async def _start(self, name: str, password: str) -> None:
        await self.client.login(name, password)
        await self.client.load_trust()
        await self.client.register_keys("ecdsa-p256")
        await self.client.connect()

    def run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_a_browser_user_and_a_python_client_user_chat_both_verified(browser_pages, stack):
    stack.seed("grace")
    frank = registered(browser_pages, stack, "frank")
    grace = PythonUser(stack.url, "grace", stack.password("grace"))
    try:
        conversation = grace.run(grace.client.create_conversation(["frank"], "From Python"))
        grace.run(grace.client.send_text(conversation, "Hello from the Python client."))
        frank.open(conversation)
        frank.sees_verified_message("grace", "Hello from the Python client.")
        frank.send("Hello from Chromium.")
        received = grace.run(grace.client.receive_text(conversation, timeout=30))
        assert (received.sender, received.text) == ("frank", "Hello from Chromium.")
    finally:
        grace.close()


def test_a_new_browser_restores_keys_from_the_backup_and_reads_history(browser_pages, stack):
    henry = registered(browser_pages, stack, "henry", "ecdsa-p256")
    ivy = registered(browser_pages, stack, "ivy")
    henry.sees_online("ivy")
    conversation = henry.start_conversation(["ivy"], "History")
    henry.send("Written before the new browser.")
    ivy.open(conversation)
    ivy.send("Also before.")
    henry.sees_verified_message("ivy", "Also before.")

    again = person(browser_pages, stack, "henry")
    again.log_in(stack.url)
    expect(again.by("restore-passphrase")).to_be_visible(timeout=TIMEOUT_MS)
    again.restore_keys()
    again.open(conversation)
    again.sees_verified_message("henry", "Written before the new browser.")
    again.sees_verified_message("ivy", "Also before.")
    again.send("And from the new browser.")
    ivy.sees_verified_message("henry", "And from the new browser.")

    # A phone-width window: nothing wider than the screen, the sidebar behind a button.
    ivy.page.set_viewport_size({"width": 380, "height": 800})
    assert ivy.page.evaluate("() => document.documentElement.scrollWidth") <= 380
    expect(ivy.by("conversation-list")).to_be_hidden()
    ivy.by("sidebar-toggle").click()
    expect(ivy.by("conversation-list")).to_be_visible()
    ivy.page.keyboard.press("Escape")
    expect(ivy.by("conversation-list")).to_be_hidden()


def tamper_with_ciphertext(stack: ChatStack, conversation: str, order: int) -> None:
    """What a malicious server (or its database) can do: flip a byte of a stored message."""
    db = sqlite3.connect(stack.database_path)
    try:
        (ciphertext,) = db.execute(
            'SELECT ciphertext FROM chat_message WHERE conversation_id = ? AND "order" = ?',
            (conversation.replace("-", ""), order),
        ).fetchone()
        altered = bytes([ciphertext[0] ^ 1]) + bytes(ciphertext[1:])
        db.execute(
            'UPDATE chat_message SET ciphertext = ? WHERE conversation_id = ? AND "order" = ?',
            (altered, conversation.replace("-", ""), order),
        )
        db.commit()
    finally:
        db.close()


def test_tampered_message_fails_with_its_reason_and_the_inspector_shows_the_checks(
    browser_pages, stack
):
    judy = registered(browser_pages, stack, "judy")
    kim = registered(browser_pages, stack, "kim")
    judy.sees_online("kim")
    conversation = judy.start_conversation(["kim"], "Evidence")
    judy.send("This one will be altered in the database.")
    judy.send("This one stays as it was signed.")
    tamper_with_ciphertext(stack, conversation, 1)

    kim.page.reload()
    kim.wait_ready()
    kim.open(conversation)
    altered = kim.page.locator("[data-testid='message'][data-order='1']")
    expect(altered).to_have_attribute("data-problem", "bad_signature", timeout=TIMEOUT_MS)
    expect(altered).to_have_attribute("data-status", "failed")
    expect(altered.get_by_test_id("message-badge")).to_contain_text("ignature")
    kim.sees_verified_message("judy", "This one stays as it was signed.")

    kim.message("This one stays as it was signed.").get_by_test_id("inspect").click()
    inspector = kim.by("inspector-dialog")
    expect(inspector).to_be_visible()
    expect(inspector).to_contain_text("Ciphertext")
    checks = inspector.get_by_test_id("inspector-check")
    assert checks.count() >= 6
    for index in range(checks.count()):
        expect(checks.nth(index)).to_have_attribute("data-ok", "true")
    no_serious_accessibility_problems(kim.page)
    save_screenshot(kim.page, "inspector")
    kim.page.keyboard.press("Escape")
    expect(inspector).to_be_hidden()

    altered.get_by_test_id("inspect").click()
    failed = kim.by("inspector-dialog").locator("[data-testid='inspector-check'][data-ok='false']")
    expect(failed).to_have_count(1)
    kim.page.keyboard.press("Escape")

    # judy revokes her keys (as after a theft): what they signed is refused with that reason.
    status = judy.page.evaluate(
        """async () => {
          const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
          const answer = await fetch("/api/keys/revoke/", {method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
            body: JSON.stringify({reason: "key_compromise"})});
          return answer.status;
        }"""
    )
    assert status == 200
    kim.page.reload()
    kim.wait_ready()
    kim.open(conversation)
    signed = kim.message("This one stays as it was signed.")
    expect(kim.page.locator("[data-testid='message'][data-order='2']")).to_have_attribute(
        "data-problem", "certificate_revoked", timeout=TIMEOUT_MS
    )
    expect(signed).to_have_count(0)  # its text is no longer shown as trusted


def test_a_verified_contacts_key_change_blocks_the_next_send_until_confirmed(browser_pages, stack):
    leo = registered(browser_pages, stack, "leo")
    mia = registered(browser_pages, stack, "mia")
    leo.sees_online("mia")
    conversation = leo.start_conversation(["mia"], "Verified")
    leo.send("Before the key change.")
    mia.open(conversation)
    mia.sees_verified_message("leo", "Before the key change.")

    mia.by("members-button").click()
    mia.by("safety-leo").click()
    expect(mia.by("safety-number")).to_be_visible(timeout=TIMEOUT_MS)
    save_screenshot(mia.page, "safety-number")
    mia.by("mark-verified").click()
    mia.page.keyboard.press("Escape")
    expect(mia.by("conversation-trust")).to_have_attribute(
        "data-trust", "verified", timeout=TIMEOUT_MS
    )

    # leo on a new browser makes new keys instead of restoring: his key changes.
    leo.page.context.close()
    new_leo = person(browser_pages, stack, "leo")
    new_leo.log_in(stack.url)
    new_leo.by("restore-new-keys").click()
    expect(new_leo.by("restore-new-keys")).to_have_text("Make new keys anyway")
    new_leo.by("restore-new-keys").click()
    new_leo.make_keys("ed25519")

    expect(mia.by("conversation-trust")).to_have_attribute(
        "data-trust", "degraded", timeout=TIMEOUT_MS
    )
    mia.by("composer").fill("Are you still you?")
    mia.by("composer").press("Enter")
    dialog = mia.by("keychange-dialog")
    expect(dialog).to_be_visible(timeout=TIMEOUT_MS)
    expect(mia.message("Are you still you?")).to_have_count(0)
    save_screenshot(mia.page, "key-change")
    mia.by("keychange-confirm").click()
    expect(mia.message("Are you still you?")).to_have_attribute(
        "data-status", "ok", timeout=TIMEOUT_MS
    )
    new_leo.open(conversation)
    new_leo.sees_verified_message("mia", "Are you still you?")


@pytest.fixture
def two_workers(tmp_path_factory):
    redis_server, stack = start_stack(tmp_path_factory, "reconnect", workers=2)
    yield stack
    stack.stop()
    redis_server.stop()


def test_a_page_reconnects_after_its_server_restarts_and_shows_every_message_once(
    browser_pages, two_workers
):
    stack = two_workers
    nina = person(browser_pages, stack, "nina")
    nina.register(stack.workers[0].url)
    nina.make_keys()
    omar = Person("omar", stack.password("omar"), browser_pages.new_page(stack.workers[1].url))
    omar.register(stack.workers[1].url)
    omar.make_keys()
    omar.sees_online("nina")
    conversation = omar.start_conversation(["nina"], "Through a restart")
    omar.send("Before the restart.")
    nina.open(conversation)
    nina.sees_verified_message("omar", "Before the restart.")

    stack.workers[0].stop()
    expect(nina.by("connection-banner")).to_be_visible(timeout=TIMEOUT_MS)
    for n in range(3):
        omar.send(f"While nina's server was down {n}.")
    stack.restart_worker(0)
    expect(nina.by("connection-banner")).to_have_count(0, timeout=TIMEOUT_MS)
    for n in range(3):
        nina.sees_verified_message("omar", f"While nina's server was down {n}.")
    texts = nina.texts()
    assert len(texts) == len(set(texts)) == 4, texts
