"""The built client served by daphne alone with DEBUG=0, seen over HTTP and in Chromium.

One module on purpose: the stack (migrate, PKI, daphne) and the browser start once."""

import base64
import hashlib
import json
import re

import httpx
import pytest

from testing.browser import check_accessibility, frontend_manifest, log_in
from testing.processes import manage, wait_until

DIST = "/static/web/dist/"


def sha384(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


@pytest.fixture(scope="module")
def alice(production_stack):
    """An httpx client logged in as alice through the login form."""
    client = httpx.Client(base_url=production_stack.url)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/accounts/login/",
        data={
            "username": "alice",
            "password": production_stack.password("alice"),
            "csrfmiddlewaretoken": token,
        },
        headers={"Referer": f"{production_stack.url}/accounts/login/"},
    )
    assert response.status_code == 302, response.text
    yield client
    client.close()


def test_the_pages_integrity_values_match_the_files_daphne_serves(production_stack, alice):
    html = alice.get("/").text
    script = re.search(r'<script type="module" src="([^"]+)" integrity="([^"]+)"', html)
    sheet = re.search(r'<link rel="stylesheet" href="([^"]+)" integrity="([^"]+)"', html)
    for url, integrity in (script.groups(), sheet.groups()):
        served = httpx.get(production_stack.url + url)
        assert served.status_code == 200
        assert sha384(served.content) == integrity, url
    assert f'<code id="build-id">{script.group(2)}</code>' in html


def test_every_chunk_in_the_import_map_matches_what_daphne_serves(production_stack, alice):
    html = alice.get("/").text
    found = re.search(r'<script type="importmap">(.*?)</script>', html)
    chunks = json.loads(found.group(1))["integrity"] if found else {}
    manifest = frontend_manifest()
    expected = {DIST + name for name in manifest["files"] if name.endswith(".js")} - {
        DIST + manifest["entry"]["js"]
    }
    assert set(chunks) == expected
    for url, integrity in chunks.items():
        assert sha384(httpx.get(production_stack.url + url).content) == integrity, url


def test_hashed_files_are_cached_for_good_and_compressed(production_stack):
    entry = frontend_manifest()["entry"]["js"]
    served = httpx.get(f"{production_stack.url}{DIST}{entry}", headers={"Accept-Encoding": "gzip"})
    assert "immutable" in served.headers["Cache-Control"]
    assert "max-age=315360000" in served.headers["Cache-Control"]
    assert served.headers["Content-Security-Policy"].startswith("default-src 'self'")
    site_css = httpx.get(f"{production_stack.url}/static/web/site.css")
    assert site_css.status_code == 200 and "immutable" not in site_css.headers["Cache-Control"]


def test_a_changed_file_gets_a_304_by_etag_not_a_stale_copy(production_stack):
    url = f"{production_stack.url}/static/web/site.css"
    first = httpx.get(url)
    again = httpx.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


# --- in Chromium ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/register/"])
def test_login_and_register_load_in_chromium_without_violations_or_accessibility_faults(
    production_stack, browser_pages, path
):
    page = browser_pages.new_page()
    response = page.goto(production_stack.url + path)
    assert response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "704px"  # site.css
    assert check_accessibility(page) == []


def test_a_seeded_user_logs_in_and_reaches_the_chat_page(production_stack, browser_pages):
    page = browser_pages.new_page()
    log_in(page, production_stack.url, "alice", production_stack.password("alice"))
    assert page.url == production_stack.url + "/"
    app = page.locator("main#app")
    assert app.get_attribute("data-username") == "alice"
    assert app.get_attribute("data-display-name") == "Alice"
    build = page.inner_text("#build-id")
    assert build == frontend_manifest()["files"][frontend_manifest()["entry"]["js"]]["integrity"]
    # The entry script and stylesheet were fetched and passed their integrity check.
    entry = frontend_manifest()["entry"]
    fetched = page.evaluate(
        "() => performance.getEntriesByType('resource').map((r) => r.name.split('/').pop())"
    )
    assert {entry["js"], entry["css"]} <= set(fetched)
    record = browser_pages.record(page)
    assert not [e for e in record.console_errors if "integrity" in e], record.console_errors


def test_self_in_connect_src_allows_the_websocket_to_our_own_origin(
    production_stack, browser_pages
):
    page = browser_pages.new_page()
    log_in(page, production_stack.url, "alice", production_stack.password("alice"))
    opened = page.evaluate(
        """() => new Promise((resolve) => {
          const socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/chat/");
          socket.onopen = () => { socket.close(); resolve("open"); };
          socket.onerror = () => resolve("error");
        })"""
    )
    assert opened == "open"


def test_an_injected_inline_script_is_refused_recorded_and_reported(
    production_stack, browser_pages
):
    page = browser_pages.new_page()
    page.goto(production_stack.url + "/accounts/login/")
    ran = page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.head.append(script);
          return window.injected === true;
        }"""
    )
    assert ran is False
    record = browser_pages.record(page)
    # Playwright delivers events while it is called: wait in the page, not in time.sleep.
    # Two records come: Chromium's console line and the securitypolicyviolation event
    # (which names the effective directive); either may come first.
    wait_until(
        lambda: (
            page.wait_for_timeout(20)
            or any("script-src-elem blocked inline" in v for v in record.csp_violations)
        ),
        5,
        "the securitypolicyviolation event",
    )
    wait_until(
        lambda: (
            page.wait_for_timeout(20)
            or any(v.startswith("console:") for v in record.csp_violations)
        ),
        5,
        "Chromium's console line",
    )
    log = production_stack.workers[0]
    wait_until(
        lambda: "CSP violation: directive=script-src-elem blocked=inline" in log.log(),
        10,
        "daphne to log the report",
    )
    record.csp_violations.clear()  # expected here; any other fails the test at teardown


def test_a_tampered_lazy_chunk_is_refused_by_its_import_map_integrity(
    production_stack, browser_pages
):
    manifest = frontend_manifest()
    lazy = [name for name, file in manifest["files"].items() if file["kind"] == "lazy"]
    assert lazy, "the build must split the DSA code into a lazily imported chunk"
    page = browser_pages.new_page()
    log_in(page, production_stack.url, "alice", production_stack.password("alice"))
    url = DIST + lazy[0]
    page.route(
        f"**{url}",
        lambda route: route.fulfill(
            status=200, content_type="text/javascript", body="export const tampered = 1;"
        ),
    )
    outcome = page.evaluate(
        "async (url) => { try { await import(url); return 'loaded'; }"
        " catch (error) { return 'refused'; } }",
        url,
    )
    assert outcome == "refused"
    assert any("integrity" in e for e in browser_pages.record(page).console_errors)


def test_the_django_admin_works_under_the_same_policy(production_stack, browser_pages):
    rows = [{"username": "root", "display_name": "Root", "password": "an-admin-passphrase-1"}]
    seed = production_stack.var_dir / "admin.json"
    seed.write_text(json.dumps([{**rows[0], "is_staff": True}]))
    manage(production_stack.env, "seed_users", "--file", str(seed))
    manage(
        production_stack.env,
        "shell",
        "-c",
        "from accounts.models import User; User.objects.filter(username='root')"
        ".update(is_superuser=True)",
    )
    page = browser_pages.new_page()
    page.goto(production_stack.url + "/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "an-admin-passphrase-1")
    with page.expect_navigation():
        page.click("input[type=submit]")
    for path in ("/admin/", "/admin/accounts/user/", "/admin/accounts/user/1/change/"):
        response = page.goto(production_stack.url + path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
    page.check("#id_is_active")  # the change form's widgets, built by the admin's scripts
    # Violations, if any, fail this test at teardown (browser_pages).
