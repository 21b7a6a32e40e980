"""Each worker watches its own channel layer: channels-redis' pub/sub layer drops what is
published while its Redis connection is down and never says so (its reconnect hooks are
never called). Every LAYER_PROBE_SECONDS the worker sends itself a probe through the
layer; when probes stop coming back the layer is down, and when they come back the
worker's subscriptions work again: then the outbox drains and every socket of this
worker gets `resync` (and its backlog) so clients fetch what they missed."""

import asyncio
import logging
import weakref

from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

# The sockets of this worker process, told to resync after an outage.
CONSUMERS: "weakref.WeakSet" = weakref.WeakSet()

_watch: "LayerWatch | None" = None


class LayerWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, on_recovery) -> None:
        self.loop = loop
        self.on_recovery = on_recovery
        self.up = True
        self.sent = 0
        self.seen = 0
        self.task = loop.create_task(self.run())

    async def run(self) -> None:
        layer = get_channel_layer()
        channel = await self._probe_channel(layer)
        receiver = self.loop.create_task(self.receive_probes(layer, channel))
        try:
            while True:
                await asyncio.sleep(settings.LAYER_PROBE_SECONDS)
                await self.probe(layer, channel)
        finally:
            receiver.cancel()

    async def _probe_channel(self, layer) -> str:
        while True:
            try:
                return await layer.new_channel("probe.")
            except Exception:  # Redis down at start: try again
                await asyncio.sleep(settings.LAYER_PROBE_SECONDS)

    async def probe(self, layer, channel: str) -> None:
        healthy = self.seen >= self.sent  # the previous probe came back
        self.sent += 1
        try:
            await asyncio.wait_for(layer.send(channel, {"type": "probe", "n": self.sent}), 2)
        except Exception:
            healthy = False
        if healthy and not self.up:
            logger.warning("channel layer: probes are back; resync this worker's sockets")
            self.up = True
            await self.on_recovery()
        elif not healthy and self.up:
            logger.warning("channel layer: probes are lost; live events may be missed")
            self.up = False

    async def receive_probes(self, layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
                self.seen = max(self.seen, message.get("n", 0))
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)


def start_watch(on_recovery) -> LayerWatch:
    global _watch
    loop = asyncio.get_running_loop()
    if _watch is None or _watch.loop is not loop or _watch.task.done():
        _watch = LayerWatch(loop, on_recovery)
    return _watch


async def resync_all(reason: str) -> None:
    for consumer in list(CONSUMERS):
        try:
            await consumer.resync(reason)
        except Exception as exc:  # one broken socket must not stop the others
            logger.warning("resync of a socket failed (%s)", type(exc).__name__)
