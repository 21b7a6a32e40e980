"""/healthz: 200 when the database, Redis and the CA key work, 503 naming what does not."""

import httpx
import pytest

from keys import ca as ca_module
from testing.processes import ChatStack, RedisServer

pytestmark = pytest.mark.django_db


def test_all_parts_working_is_200_without_login_and_never_cached(client, pki):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "ca": "ok"},
    }
    assert "no-store" in response["Cache-Control"]


def test_an_unreadable_ca_key_is_503_naming_the_ca_and_nothing_secret(client, pki, settings):
    settings.CA_PASSPHRASE = "not-the-passphrase"
    ca_module._read_private_key.cache_clear()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "failing": ["ca"],
        "checks": {"database": "ok", "redis": "ok", "ca": "fail"},
    }
    assert b"passphrase" not in response.content.lower()


def test_no_ca_at_all_is_503_naming_the_ca(client, db):
    assert client.get("/healthz").json()["failing"] == ["ca"]


def test_only_get(client, pki):
    assert client.post("/healthz").status_code == 405


def test_a_balancer_probing_over_plain_http_is_not_redirected(client, pki, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 301


@pytest.fixture
def stack_with_own_redis(tmp_path):
    redis_server = RedisServer(tmp_path / "redis")
    try:
        stack = ChatStack(tmp_path / "var", redis_server.url)
    except BaseException:
        redis_server.stop()
        raise
    yield stack, redis_server
    stack.stop()
    redis_server.stop()


def test_redis_stopped_is_503_naming_redis_and_200_once_it_is_back(stack_with_own_redis):
    stack, redis_server = stack_with_own_redis
    url = f"{stack.url}/healthz"
    assert httpx.get(url, timeout=10).status_code == 200
    redis_server.stop()
    response = httpx.get(url, timeout=10)
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
    assert response.json()["checks"] == {"database": "ok", "redis": "fail", "ca": "ok"}
    assert redis_server.url not in response.text and str(redis_server.port) not in response.text
    redis_server.start()
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"
