"""The chat page and the server-rendered pages in process: policy header, no inline code,
the bundle's integrity values, the page without a build."""

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

ENTRY = "main-ABCDEFGH.js"
STYLESHEET = "app-IJKLMNOP.css"
DSA_CHUNK = "dsa-QRSTUVWX.js"
SHARED_CHUNK = "chunk-YZ234567.js"


def sri(label: str) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(label.encode()).digest()).decode()


@pytest.fixture
def manifest(tmp_path, settings):
    """A build description with an entry, a stylesheet, a shared and a lazy chunk."""
    files = {
        name: {"size": 1, "gzip_size": 1, "integrity": sri(name), "kind": kind}
        for name, kind in [
            (ENTRY, "eager"),
            (SHARED_CHUNK, "eager"),
            (DSA_CHUNK, "lazy"),
            (STYLESHEET, "css"),
        ]
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"entry": {"js": ENTRY, "css": STYLESHEET}, "files": files}))
    settings.FRONTEND_MANIFEST = path
    return files


@pytest.fixture
def alice_client(client, users):
    client.force_login(users["alice"])
    return client


class Elements(HTMLParser):
    """Every start tag as (tag, attributes, text up to its end tag for <script>)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict, str]] = []
        self._script: list | None = None

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), ""))
        if tag == "script":
            self._script = []

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            name, attrs, _ = self.elements[-1]
            self.elements[-1] = (name, attrs, "".join(self._script))
            self._script = None


def elements(html: str) -> list[tuple[str, dict, str]]:
    parser = Elements()
    parser.feed(html)
    return parser.elements


def csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


def test_the_chat_page_needs_a_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("name", ["accounts:login", "accounts:register"])
def test_the_login_and_register_pages_carry_the_strict_policy(client, name):
    policy = csp(client.get(reverse(name)))
    assert policy == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "report-uri": ["/csp-report/"],
    }


def test_redirects_and_errors_carry_the_policy_too(client):
    assert "Content-Security-Policy" in client.get(reverse("home"))  # 302 to the login
    assert "Content-Security-Policy" in client.get("/no/such/page/")


def test_the_chat_page_loads_the_entry_script_and_stylesheet_with_their_integrity(
    alice_client, manifest
):
    found = elements(alice_client.get(reverse("home")).content.decode())
    scripts = [attrs for tag, attrs, _ in found if tag == "script" and "src" in attrs]
    sheets = [attrs for tag, attrs, _ in found if tag == "link" and attrs.get("integrity")]
    assert scripts == [
        {
            "type": "module",
            "src": f"/static/web/dist/{ENTRY}",
            "integrity": sri(ENTRY),
            "crossorigin": "anonymous",
        }
    ]
    assert [(s["href"], s["integrity"]) for s in sheets] == [
        (f"/static/web/dist/{STYLESHEET}", sri(STYLESHEET))
    ]


def test_the_import_map_gives_every_chunk_its_integrity_and_the_policy_allows_exactly_it(
    alice_client, manifest
):
    response = alice_client.get(reverse("home"))
    [(_, attrs, text)] = [e for e in elements(response.content.decode()) if e[0] == "script"][:1]
    assert attrs == {"type": "importmap"}
    assert json.loads(text) == {
        "integrity": {
            f"/static/web/dist/{DSA_CHUNK}": sri(DSA_CHUNK),
            f"/static/web/dist/{SHARED_CHUNK}": sri(SHARED_CHUNK),
        }
    }
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    assert csp(response)["script-src"] == ["'self'", f"'sha256-{digest}'"]


def test_other_pages_do_not_get_the_import_map_hash(client, manifest):
    assert csp(client.get(reverse("accounts:login")))["script-src"] == ["'self'"]


def test_the_chat_page_names_the_user_and_shows_the_build_hash(alice_client, manifest):
    html = alice_client.get(reverse("home")).content.decode()
    main = next(attrs for tag, attrs, _ in elements(html) if tag == "main")
    assert main == {"id": "app", "data-username": "alice", "data-display-name": "Alice"}
    assert "Loading SecureChat…" in html and "<noscript>" in html
    assert f'<code id="build-id">{sri(ENTRY)}</code>' in html


def test_without_a_build_the_page_says_what_to_run_and_the_check_warns(
    alice_client, settings, tmp_path
):
    settings.FRONTEND_MANIFEST = tmp_path / "missing" / "manifest.json"
    response = alice_client.get(reverse("home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "The front-end is not built: run <code>make run</code>" in html
    assert not [e for e in elements(html) if e[0] == "script"]
    from django.core.checks import run_checks

    assert [m.id for m in run_checks() if m.id.startswith("web.")] == ["web.W001"]


def test_with_a_build_the_check_is_silent(manifest):
    from django.core.checks import run_checks

    assert [m.id for m in run_checks() if m.id.startswith("web.")] == []


def test_a_weakened_script_policy_is_reported_by_the_check(manifest, settings):
    settings.CSP_DIRECTIVES = {**settings.CSP_DIRECTIVES, "script-src": "'self' 'unsafe-inline'"}
    from django.core.checks import run_checks

    assert [m.id for m in run_checks() if m.id.startswith("web.")] == ["web.W002"]


@pytest.mark.parametrize(
    "name",
    [
        "accounts:login",
        "accounts:register",
        "home",
        "accounts:password_change",
        "accounts:password_change_done",
        "accounts:contacts",
    ],
)
def test_no_page_has_inline_style_or_an_inline_script_the_policy_does_not_allow(
    alice_client, manifest, name
):
    if name in ("accounts:login", "accounts:register"):
        alice_client.logout()
    response = alice_client.get(reverse(name))
    assert response.status_code == 200
    found = elements(response.content.decode())
    assert [tag for tag, _, _ in found if tag == "style"] == []
    assert [(tag, attrs) for tag, attrs, _ in found if "style" in attrs] == []
    assert not [attrs for tag, attrs, _ in found if any(a.startswith("on") for a in attrs)]
    allowed = csp(response)["script-src"]
    for tag, attrs, text in found:
        if tag == "script" and "src" not in attrs:
            digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
            assert attrs.get("type") == "importmap" and f"'sha256-{digest}'" in allowed


def test_templates_hold_no_inline_style_or_script():
    from pathlib import Path

    from django.conf import settings

    for path in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"\sstyle=|<style", text), path
        assert not re.search(r"<script(?![^>]*\ssrc=)(?![^>]*importmap)", text), path
