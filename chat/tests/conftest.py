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


class RawSocket:
    """A bare protocol socket for tests that need no crypto (presence, bad frames)."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.events: list[dict] = []
        self.counter = 0

    @classmethod
    async def open(cls, worker, origin: str, cookie: str) -> "RawSocket":
        import websockets

        socket = await websockets.connect(
            f"{worker.ws_url}/ws/chat/", origin=origin, additional_headers={"Cookie": cookie}
        )
        return cls(socket)

    async def _read(self, timeout: float) -> dict:
        import asyncio
        import json

        return json.loads(await asyncio.wait_for(self.socket.recv(), timeout))

    async def request(self, type_: str, timeout: float = 10, **fields) -> dict:
        import json

        self.counter += 1
        request_id = f"r{self.counter}"
        await self.socket.send(json.dumps({"type": type_, "id": request_id, **fields}))
        while True:
            frame = await self._read(timeout)
            if frame.get("id") == request_id:
                return frame
            self.events.append(frame)

    async def event(self, type_: str, timeout: float = 10, **match) -> dict:
        for index, frame in enumerate(self.events):
            if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                return self.events.pop(index)
        while True:
            frame = await self._read(timeout)
            if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame
            self.events.append(frame)

    async def close(self) -> None:
        await self.socket.close()
