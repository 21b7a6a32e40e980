"""A real daphne + Redis + SQLite stack for the chat integration tests."""

import re

import httpx
import pytest

from testing.processes import ChatStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("chat"), redis_server.url)
    yield server
    server.stop()


def login_cookie(url: str, username: str, password: str) -> str:
    """Log in over real HTTP; the Cookie header a WebSocket handshake needs."""
    with httpx.Client(base_url=url) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{url}/accounts/login/"},
        )
        assert response.status_code == 302, f"login of {username} failed"
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())
