"""The WebSocket handshake accepts exactly the site's own scheme://host:port (issue 15,
item 3): the rule on plain values, then real handshakes against a real daphne."""

import asyncio

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from securechat.origins import origin_allowed, parse_origin
from testing.processes import ChatStack

SITE = "http://127.0.0.1:8000"
HOST = "127.0.0.1:8000"


@pytest.fixture
def site(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["127.0.0.1", "chat.example.org"]
    settings.CSRF_TRUSTED_ORIGINS = []
    return settings


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # another port on the same host: the finding
        "https://127.0.0.1",
        "ftp://127.0.0.1",
        "https://127.0.0.1:8000",  # same host and port, other scheme
        "http://127.0.0.1",  # the default port is another origin
        "http://localhost:8000",  # another name for the same machine is another origin
        "http://evil.example.com",
        "http://127.0.0.1:8000.evil.example.com",
        "http://user@127.0.0.1:8000",
        "http://127.0.0.1:8000/path",
        "http://127.0.0.1:notaport",
        "null",
        "",
        None,  # no Origin at all: browsers always send one
    ],
)
def test_an_origin_other_than_the_site_s_own_is_refused(site, origin):
    assert not origin_allowed(origin, host_header=HOST, secure=False)


def test_the_site_s_own_origin_is_accepted_in_any_letter_case(site):
    assert origin_allowed(SITE, host_header=HOST, secure=False)
    assert origin_allowed("HTTP://127.0.0.1:8000", host_header=HOST, secure=False)


def test_default_ports_are_the_same_origin_written_or_not(site):
    assert origin_allowed("https://chat.example.org", host_header="chat.example.org", secure=True)
    assert origin_allowed(
        "https://chat.example.org:443", host_header="chat.example.org", secure=True
    )
    assert not origin_allowed(
        "http://chat.example.org", host_header="chat.example.org", secure=True
    )


def test_a_host_outside_allowed_hosts_is_refused_even_when_origin_matches_it(site):
    # DNS rebinding: the attacker's page and Host header both name the attacker's domain
    assert not origin_allowed(
        "http://rebind.example.net", host_header="rebind.example.net", secure=False
    )
    assert not origin_allowed(SITE, host_header=None, secure=False)


def test_csrf_trusted_origins_are_accepted_exactly(site):
    site.CSRF_TRUSTED_ORIGINS = ["https://chat.example.org", "https://*.example.com"]
    assert origin_allowed("https://chat.example.org", host_header=HOST, secure=False)
    assert origin_allowed("https://eu.example.com", host_header=HOST, secure=False)
    assert not origin_allowed("http://chat.example.org", host_header=HOST, secure=False)
    assert not origin_allowed("https://chat.example.org:8443", host_header=HOST, secure=False)
    assert not origin_allowed("https://example.com", host_header=HOST, secure=False)
    assert not origin_allowed("https://eu.example.com.evil.net", host_header=HOST, secure=False)


def test_ipv6_origins_compare_by_address_and_port(site):
    site.ALLOWED_HOSTS = ["[::1]"]
    assert origin_allowed("http://[::1]:8000", host_header="[::1]:8000", secure=False)
    assert not origin_allowed("http://[::1]:8001", host_header="[::1]:8000", secure=False)


def test_parse_origin_reads_only_http_origins():
    assert parse_origin("https://Chat.Example.org") == ("https", "chat.example.org", 443)
    assert parse_origin("ws://127.0.0.1:8000") is None


# --- real handshakes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    """One worker that trusts one extra origin and sits behind a proxy that says https."""
    server = ChatStack(
        tmp_path_factory.mktemp("origins"),
        redis_server.url,
        CSRF_TRUSTED_ORIGINS="https://chat.example.org",
        SECURE_PROXY_SSL_HEADER="1",
    )
    yield server
    server.stop()


async def handshake(stack, origin: str | None, **headers: str) -> int:
    """The status of the handshake: 101 when it opened (the socket is then closed with
    4001, there is no session), else what the server answered."""
    try:
        socket = await websockets.connect(
            f"{stack.workers[0].ws_url}/ws/chat/", origin=origin, additional_headers=headers
        )
    except InvalidStatus as refused:
        return refused.response.status_code
    await socket.close()
    return 101


def test_handshakes_from_other_origins_get_403_and_the_site_s_own_opens(stack):
    port = stack.workers[0].port
    own = f"http://127.0.0.1:{port}"
    refused = [
        "http://127.0.0.1:9999",
        "https://127.0.0.1",
        "ftp://127.0.0.1",
        f"https://127.0.0.1:{port}",
        f"http://localhost:{port}",
        "http://chat.example.org",
        None,
    ]

    async def attempts():
        return [await handshake(stack, origin) for origin in refused], await handshake(stack, own)

    statuses, accepted = asyncio.run(attempts())
    assert statuses == [403] * len(refused)
    assert accepted == 101


def test_a_trusted_origin_and_the_proxy_s_scheme_are_honoured(stack):
    port = stack.workers[0].port

    async def attempts():
        return [
            await handshake(stack, "https://chat.example.org"),
            # behind the proxy, the browser's page was https on this host and port
            await handshake(stack, f"https://127.0.0.1:{port}", **{"X-Forwarded-Proto": "https"}),
            await handshake(stack, f"http://127.0.0.1:{port}", **{"X-Forwarded-Proto": "https"}),
        ]

    assert asyncio.run(attempts()) == [101, 101, 403]
