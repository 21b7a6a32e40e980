"""A WebSocket that comes back: when it drops, it reconnects with exponential backoff and
jitter (across the server's worker URLs, in turn), reports its state as
`connection.state` events (connected / reconnecting / offline) in the event stream, and
lets requests wait for it. What was missed meanwhile is the client's to fetch
(`ChatClient` resyncs when it sees `connected` again)."""

import asyncio
import random

import websockets

from .connection import Connection
from .errors import ProtocolError

# Close codes after which reconnecting cannot help: not authenticated, session ended,
# flooding, too many connections (protocol.md §4.5).
FINAL_CLOSE_CODES = {4001, 4003, 4008, 4009}
FIRST_DELAY, MAX_DELAY = 0.2, 5.0


def backoff(attempt: int) -> float:
    """Exponential, capped, with ±50 % jitter so a worker's clients do not come back at once."""
    jitter = random.uniform(0.5, 1.5)  # noqa: S311 - timing jitter, not a secret
    return min(MAX_DELAY, FIRST_DELAY * 2**attempt) * jitter


class LiveSocket:
    def __init__(self, urls: list[str], cookie: str) -> None:
        self.urls, self.cookie = urls, cookie
        self.connection: Connection | None = None
        self.state = "offline"
        self.changed = asyncio.Condition()
        self.closing = False
        self.reconnects = 0

    async def _open(self, url: str) -> Connection:
        ws_url = url.replace("http", "ws", 1) + "/ws/chat/"
        return await Connection.open(ws_url, origin=url, cookie=self.cookie)

    async def _set(self, state: str) -> dict:
        async with self.changed:
            self.state = state
            self.changed.notify_all()
        return {"type": "connection.state", "id": None, "state": state}

    async def open(self) -> None:
        self.connection = await self._open(self.urls[0])
        await self._set("connected")

    async def next_event(self) -> dict:
        """The next frame of the socket, or a `connection.state` event when it drops and
        when it is back."""
        if self.state == "reconnecting":
            return await self._reconnect()
        try:
            return await self.connection.next_event(timeout=None)
        except ProtocolError:
            if self.closing or self.connection.close_code in FINAL_CLOSE_CODES:
                await self._set("offline")
                raise
            return await self._set("reconnecting")

    async def _reconnect(self) -> dict:
        attempt = 0
        while not self.closing:
            url = self.urls[(self.reconnects + attempt) % len(self.urls)]
            try:
                self.connection = await self._open(url)
            except (OSError, websockets.WebSocketException, TimeoutError):
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue
            self.reconnects += 1
            return await self._set("connected")
        return await self._set("offline")

    async def wait_connected(self, timeout: float) -> None:
        async def connected() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: self.state != "reconnecting")

        await asyncio.wait_for(connected(), timeout)
        if self.state != "connected":
            raise ProtocolError("closed", "The connection is offline.")

    async def request(self, type_: str, *, timeout: float = 10, **fields) -> dict:
        await self.wait_connected(timeout)
        return await self.connection.request(type_, timeout=timeout, **fields)

    async def close(self) -> None:
        self.closing = True
        if self.connection is not None:
            await self.connection.close()
        await self._set("offline")
