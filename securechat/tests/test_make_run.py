"""`make run`'s server script end to end: real redis-server, real daphne, real HTTP and WS."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest
import redis
import websockets
from websockets.exceptions import InvalidStatus

from testing.processes import ROOT, free_port, wait_until


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """scripts/serve.py with nothing answering at REDIS_URL, so it starts its own Redis."""
    var_dir = tmp_path_factory.mktemp("var")
    redis_port, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
    env.update(
        SECURECHAT_VAR_DIR=str(var_dir),
        PORT=str(port),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DEBUG="1",
    )
    log = (var_dir / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError((var_dir / "serve.log").read_text())
        try:
            return httpx.get(f"{url}/accounts/login/", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, 120, "make run's server")
    output = (var_dir / "serve.log").read_text()
    yield {"url": url, "port": port, "redis_port": redis_port, "output": output, "process": process}
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    log.close()


def login(url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{url}/accounts/login/"},
    )
    assert response.status_code == 302, response.text
    return client


def demo_password(output: str, username: str) -> str:
    return re.search(rf"created {username} password: (\S+)", output).group(1)


def test_make_run_serves_the_login_page_and_a_seeded_user_logs_in(served):
    assert "started a project-local redis-server" in served["output"]
    for name in ("alice", "bob", "carol"):
        assert f"created {name} password: " in served["output"]
    client = login(served["url"], "alice", demo_password(served["output"], "alice"))
    home = client.get("/")
    assert home.status_code == 200 and "Signed in as @alice" in home.text


def test_a_wrong_password_does_not_log_in(served):
    with pytest.raises(AssertionError):
        login(served["url"], "bob", "not-the-password")


async def _ws(served, origin: str, cookie: str | None = None):
    headers = {"Cookie": cookie} if cookie else {}
    return await websockets.connect(
        f"ws://127.0.0.1:{served['port']}/ws/chat/", origin=origin, additional_headers=headers
    )


def test_a_websocket_from_a_foreign_origin_is_rejected(served):
    async def attempt():
        with pytest.raises(InvalidStatus) as refused:
            await _ws(served, "http://evil.example.com")
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 403


def test_a_websocket_without_a_session_is_closed_with_4001(served):
    async def attempt():
        socket = await _ws(served, served["url"])
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
        return closed.value.rcvd.code

    assert asyncio.run(attempt()) == 4001


def test_a_websocket_with_a_session_from_our_origin_is_accepted(served):
    client = login(served["url"], "carol", demo_password(served["output"], "carol"))
    cookie = f"sessionid={client.cookies['sessionid']}"

    async def attempt():
        socket = await _ws(served, served["url"], cookie)
        await socket.send(json.dumps({"type": "ping", "id": "1"}))
        await socket.close()
        return socket.close_code

    assert asyncio.run(attempt()) == 1000


def test_stopping_the_server_stops_its_own_redis(served):
    local = redis.Redis(port=served["redis_port"], socket_timeout=1)
    assert local.ping()
    served["process"].send_signal(signal.SIGTERM)
    served["process"].wait(timeout=20)

    def gone() -> bool:
        try:
            local.ping()
            return False
        except redis.ConnectionError:
            return True

    wait_until(gone, 10, "the project-local redis-server to stop")
