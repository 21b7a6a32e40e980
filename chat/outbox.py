"""The outbox publisher: one per worker process. It sends unsent outbox events to the
channel layer in id order and marks them sent; it is woken after each commit that wrote
one, and polls every OUTBOX_POLL_SECONDS for what a Redis outage or a dead worker left
behind. Events are sent at least once: a worker that dies between sending and marking
re-sends after the lease, and clients drop duplicates (protocol.md §7)."""

import asyncio
import datetime as dt
import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async as db
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

BATCH = 200

_publisher: "Publisher | None" = None


def _claim_batch() -> list:
    """Claim the oldest unsent events nobody else is sending (a lease, so a worker that
    dies mid-send lets another take over)."""
    from chat.models import OutboxEvent

    now = timezone.now()
    with transaction.atomic():
        candidates = list(
            OutboxEvent.objects.filter(sent_at__isnull=True)
            .exclude(claimed_until__gt=now)
            .order_by("id")
            .values_list("id", flat=True)[:BATCH]
        )
        if not candidates:
            return []
        until = now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        # Re-checked in the UPDATE: of two workers racing, each row goes to one.
        OutboxEvent.objects.filter(pk__in=candidates, sent_at__isnull=True).exclude(
            claimed_until__gt=now
        ).update(claimed_until=until)
        return list(
            OutboxEvent.objects.filter(pk__in=candidates, claimed_until=until).order_by("id")
        )


def _release(ids: list[int]) -> None:
    from chat.models import OutboxEvent

    OutboxEvent.objects.filter(pk__in=ids, sent_at__isnull=True).update(claimed_until=None)


def _mark_sent(ids: list[int]) -> None:
    from chat.models import OutboxEvent

    now = timezone.now()
    OutboxEvent.objects.filter(pk__in=ids).update(sent_at=now)
    OutboxEvent.objects.filter(
        sent_at__lt=now - dt.timedelta(seconds=settings.OUTBOX_KEEP_SECONDS)
    ).delete()


def _settle(batch: list, done: list[int]) -> None:
    """After sending a batch: what went out is marked sent; the rest is given back at once,
    not after the lease (the retry is ours)."""
    if done:
        _mark_sent(done)
    if len(done) < len(batch):
        _release([row.pk for row in batch if row.pk not in done])


def _message(row) -> dict:
    return {"type": "chat.event", "event": row.event}


async def drain() -> int:
    """Send everything unsent that this worker can claim; the number sent. Raises when
    the channel layer fails (what is not sent stays for the next try)."""
    layer = get_channel_layer()
    sent = 0
    while batch := await db(_claim_batch)():
        done = []
        try:
            for row in batch:
                for group in row.groups:
                    await layer.group_send(group, _message(row))
                done.append(row.pk)
        finally:
            await db(_settle)(batch, done)
            sent += len(done)
    return sent


def drain_now() -> int:
    """`drain` for a process without an event loop of its own (a command, a script):
    plain database calls in this thread, so an open transaction or test is not disturbed
    (database_sync_to_async would close this thread's connection)."""
    send = async_to_sync(get_channel_layer().group_send)
    sent = 0
    while batch := _claim_batch():
        done = []
        try:
            for row in batch:
                for group in row.groups:
                    send(group, _message(row))
                done.append(row.pk)
        finally:
            _settle(batch, done)
            sent += len(done)
    return sent


class Publisher:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.wakeup = asyncio.Event()
        self.failing = False
        self.task = loop.create_task(self.run())

    def wake_threadsafe(self) -> None:
        self.loop.call_soon_threadsafe(self.wakeup.set)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wakeup.wait(), settings.OUTBOX_POLL_SECONDS)
            except TimeoutError:
                pass
            self.wakeup.clear()
            try:
                await drain()
                if self.failing:
                    logger.warning("outbox: the channel layer is back; unsent events sent")
                self.failing = False
            except Exception as exc:  # Redis down: keep the events, say so once
                if not self.failing:
                    logger.warning("outbox: cannot publish (%s); will retry", type(exc).__name__)
                self.failing = True


def start_publisher() -> "Publisher":
    """The publisher of this process, started on its running event loop."""
    global _publisher
    loop = asyncio.get_running_loop()
    if _publisher is None or _publisher.loop is not loop or _publisher.task.done():
        _publisher = Publisher(loop)
    return _publisher


def wake() -> None:
    """After a commit that wrote events: the worker's publisher sends them now. A process
    without one (a management command, a script) sends them itself, at once."""
    if _publisher is not None and not _publisher.loop.is_closed():
        _publisher.wake_threadsafe()
        return
    try:
        drain_now()
    except Exception as exc:  # a worker's poll sends it later
        logger.warning("outbox: cannot publish now (%s); a worker will", type(exc).__name__)
