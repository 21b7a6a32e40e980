"""One WebSocket: replies resolve the request with the same id, events queue up."""

import asyncio
import contextlib
import itertools
import json

import websockets

from .errors import ProtocolError


class Connection:
    def __init__(self, socket) -> None:
        self.socket = socket
        self.pending: dict[str, asyncio.Future] = {}
        self.events: list[dict] = []
        self.arrived = asyncio.Condition()
        self.ids = itertools.count(1)
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, *, origin: str, cookie: str) -> "Connection":
        socket = await websockets.connect(
            ws_url, origin=origin, additional_headers={"Cookie": cookie}, max_size=2**22
        )
        return cls(socket)

    async def _read(self) -> None:
        try:
            await self._read_frames()
        finally:
            # Requests still waiting will get no reply on this socket: fail them now.
            for waiter in self.pending.values():
                if not waiter.done():
                    waiter.set_exception(ProtocolError("closed", "The connection closed."))
            self.pending.clear()

    async def _read_frames(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.socket:
                frame = json.loads(text)
                waiter = self.pending.pop(frame.get("id"), None) if frame.get("id") else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                    continue
                async with self.arrived:
                    self.events.append(frame)
                    self.arrived.notify_all()
        async with self.arrived:
            self.arrived.notify_all()

    async def request(self, type_: str, *, timeout: float = 10, **fields) -> dict:
        request_id = str(next(self.ids))
        if self.reader.done():
            raise ProtocolError("closed", "The connection is closed.")
        waiter = asyncio.get_running_loop().create_future()
        self.pending[request_id] = waiter
        try:
            await self.socket.send(json.dumps({"type": type_, "id": request_id, **fields}))
        except websockets.ConnectionClosed:
            self.pending.pop(request_id, None)
            raise ProtocolError("closed", "The connection is closed.") from None
        try:
            reply = await asyncio.wait_for(waiter, timeout)
        finally:
            self.pending.pop(request_id, None)
        if reply["type"] == "error":
            raise ProtocolError(reply["code"], reply["message"])
        return reply

    async def send_raw(self, text: str) -> None:
        await self.socket.send(text)

    async def next_event(
        self, type_: str | None = None, *, timeout: float = 10, predicate=None
    ) -> dict:
        """The first queued event matching, waiting for it; others stay queued in order."""

        def match() -> dict | None:
            for index, event in enumerate(self.events):
                if (type_ is None or event["type"] == type_) and (
                    predicate is None or predicate(event)
                ):
                    return self.events.pop(index)
            return None

        async def wait() -> dict:
            async with self.arrived:
                while (found := match()) is None:
                    if self.reader.done():
                        raise ProtocolError("closed", "The connection is closed.")
                    await self.arrived.wait()
                return found

        return await asyncio.wait_for(wait(), timeout)

    @property
    def close_code(self) -> int | None:
        return self.socket.close_code

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()
