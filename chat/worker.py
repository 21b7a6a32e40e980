"""The background tasks every worker process runs on its event loop: the outbox
publisher and the channel-layer watch. Started by the ASGI app on its first call."""

from chat import layer_watch, outbox


async def _after_recovery() -> None:
    outbox.start_publisher().wakeup.set()  # send what the outage held back
    await layer_watch.resync_all("layer_recovered")


def start_worker_tasks() -> None:
    """Idempotent; call from inside the worker's running event loop."""
    outbox.start_publisher()
    layer_watch.start_watch(_after_recovery)


class WorkerTasksMiddleware:
    """ASGI middleware: make sure this process's worker tasks run (daphne has no
    lifespan events to start them from)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        start_worker_tasks()
        return await self.app(scope, receive, send)
