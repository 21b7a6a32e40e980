"""`make soak`: the fault-injecting state machine (chat/tests/test_state_machine.py) for
minutes, against a stack that also carries a steady load of simulated users, while a
sampler records every worker's memory and connections and Redis' memory.

    .venv/bin/python bench/soak.py --minutes 5 [--users 20] [--send-every 3] [--interval 10]

Everything runs in this process on one stack (two daphne workers, their own Redis,
SQLite): the machine's faults (Redis stopped or killed, a worker SIGKILLed, the database
locked) hit the load too. The load's users reconnect (to the other worker) and resend the
same body after a failure, so it also proves at-most-once under load: every
acknowledged client_id is stored exactly once.

Writes under bench/results/soak-<time>/: samples.csv (one row per --interval seconds),
soak.png (RSS per worker, Redis used_memory, connections per worker, faults marked),
summary.json (figures, the machine's report, failures) and the stack's logs in var/.
SOAK_STEPS (default 30) is the longest example; SOAK_EXAMPLES (default 100000) bounds
the examples of one run of the machine, which ends when the time is up (and starts again
after a failure, which is recorded). Exit status 1 when a run of
the machine or the load's final check failed.
"""

import argparse
import asyncio
import collections
import contextlib
import csv
import json
import os
import random
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "1")

from chat.tests.test_state_machine import (  # noqa: E402
    USERS,
    LoopThread,
    Rig,
    close_quietly,
    hexid,
    run_machine,
    seal,
)
from client.securechat_client.client import ChatClient  # noqa: E402
from client.securechat_client.errors import ProtocolError  # noqa: E402
from testing.processes import ChatStack, RedisServer  # noqa: E402

GROUP_SIZE = 5  # load users per conversation


# --- sampling -------------------------------------------------------------------------


def rss_kib(pid: int | None) -> int | None:
    """VmRSS of a process, in KiB, from /proc."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def established(port: int) -> int:
    """ESTABLISHED TCP sockets whose local port is `port` (the server's ends), from
    /proc/net/tcp and tcp6."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


class Sampler(threading.Thread):
    """Every `interval` seconds: Redis used_memory, each worker's RSS and connections,
    and the load's counters; appended to the CSV as it goes."""

    def __init__(self, stack, redis_server, load, report, interval: float, path: Path) -> None:
        super().__init__(name="sampler", daemon=True)
        self.stack, self.redis, self.load, self.interval = stack, redis_server, load, interval
        self.report = report  # the machine's
        self.path = path
        self.rows: list[dict] = []
        self.stopping = threading.Event()
        self.start_time = time.time()
        self.fields = ["time", "elapsed_s", "redis_used_memory", "redis_rss_kib"]
        for i in range(len(stack.workers)):
            self.fields += [f"worker{i}_pid", f"worker{i}_rss_kib", f"worker{i}_connections"]
        self.fields += ["load_acked", "load_errors", "load_reconnects", "machine_examples"]

    def sample(self) -> dict:
        now = time.time()
        row = {
            "time": round(now, 1),
            "elapsed_s": round(now - self.start_time, 1),
            "redis_used_memory": self.redis.used_memory(),
            "redis_rss_kib": rss_kib(self.redis.pid),
        }
        for i, worker in enumerate(list(self.stack.workers)):
            pid = worker.pid if worker.running else None
            row[f"worker{i}_pid"] = pid
            row[f"worker{i}_rss_kib"] = rss_kib(pid)
            row[f"worker{i}_connections"] = established(worker.port) if pid else None
        row["load_acked"] = self.load.stats["acked"]
        row["load_errors"] = self.load.stats["errors"]
        row["load_reconnects"] = self.load.stats["reconnects"]
        row["machine_examples"] = self.report.counts["examples"]
        return row

    def run(self) -> None:
        with self.path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=self.fields)
            writer.writeheader()
            while True:
                row = self.sample()
                self.rows.append(row)
                writer.writerow(row)
                out.flush()
                if self.stopping.wait(self.interval):
                    return


# --- the load -------------------------------------------------------------------------


class Load:
    """`users` simulated users in conversations of five, each sending a message every
    `every` seconds (jittered), acknowledging what it received; after a failure it
    reconnects (to the other worker) and sends the same body again."""

    def __init__(self, stack, users: int, every: float) -> None:
        self.stack, self.every = stack, every
        self.names = [f"load{n:02d}" for n in range(1, users + 1)]
        self.loop = LoopThread()
        self.keys: dict = {}
        self.conversations: dict[str, str] = {}  # user -> conversation
        self.acked: dict[str, int] = {}  # client_id hex -> order
        self.stats: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.machine_runs = 0
        self.stopping = False
        self.tasks: list = []

    def prepare(self) -> None:
        self.loop.run(self._prepare(), timeout=600)

    async def _prepare(self) -> None:
        for index, name in enumerate(self.names):
            client = await self._client(name, index)
            try:
                await client.register_keys(signing_algorithm="ed25519")
                self.keys[name] = client.keys
            finally:
                await close_quietly(client)
        for start in range(0, len(self.names), GROUP_SIZE):
            group = self.names[start : start + GROUP_SIZE]
            if len(group) < 2:
                group = self.names[start - 1 : start + 1]
            owner = await self._client(group[0], 0)
            try:
                owner.use_keys(self.keys[group[0]])
                await owner.connect()
                conversation = await owner.create_conversation(group[1:], title="load")
            finally:
                await close_quietly(owner)
            for name in group:
                self.conversations.setdefault(name, conversation)

    async def _client(self, name: str, index: int) -> ChatClient:
        """A logged-in client on worker `index`, or the next one that runs."""
        workers = list(self.stack.workers)
        order = [workers[(index + k) % len(workers)] for k in range(len(workers))]
        first = next((w.url for w in order if w.running), order[0].url)
        others = [w.url for w in workers if w.url != first]
        try:  # a client that fails over to the other worker by itself, where supported
            client = ChatClient(first, other_urls=others)
        except TypeError:
            client = ChatClient(first)
        await client.login(name, self.stack.password(name))
        await client.load_trust()
        return client

    async def _session(self, name: str, index: int) -> ChatClient:
        client = await self._client(name, index)
        try:
            client.use_keys(self.keys[name])
            await client.connect()
            await self._key(client, self.conversations[name])
        except BaseException:
            await close_quietly(client)
            raise
        return client

    async def _key(self, client: ChatClient, conversation: str) -> None:
        listed = await client.request("conversation.list")
        current = next(c["epoch"] for c in listed["conversations"] if c["id"] == conversation)
        state = client.conversations.get(conversation)
        if state is None or current not in state.epoch_keys:
            await client.fetch_epochs(conversation, [current])

    def start(self) -> None:
        async def spawn() -> None:
            for index, name in enumerate(self.names):
                self.tasks.append(asyncio.create_task(self._user(name, index)))

        self.loop.run(spawn())

    async def _user(self, name: str, index: int) -> None:
        conversation = self.conversations[name]
        client, body, since_ack = None, None, 0
        await asyncio.sleep(random.uniform(0, self.every))  # noqa: S311 - load jitter
        while not self.stopping:
            try:
                if client is None:
                    client = await asyncio.wait_for(self._session(name, index), 20)
                    self.stats["reconnects"] += 1
                if body is None:
                    await asyncio.sleep(self.every * random.uniform(0.5, 1.5))  # noqa: S311
                    body = seal(client, conversation, f"{name} at {time.time():.3f}")
                ack = await asyncio.wait_for(client.request("message.send", **body), 15)
                previous = self.acked.setdefault(hexid(body["client_id"]), ack["order"])
                if previous != ack["order"]:
                    self.errors[f"order changed on retry: {previous} -> {ack['order']}"] += 1
                self.stats["acked"] += 1
                body = None
                since_ack += 1
                if since_ack >= 5:  # tell the server what arrived, as a client does
                    since_ack = 0
                    await self._ack_received(client, conversation)
            except asyncio.CancelledError:
                break
            except Exception as exc:
                if isinstance(exc, ProtocolError) and exc.code == "stale_epoch":
                    body = None  # refused, nothing stored: a new body under the new key
                    with contextlib.suppress(Exception):
                        await self._key(client, conversation)
                    continue
                self.stats["errors"] += 1
                code = getattr(exc, "code", "")
                self.errors[f"{type(exc).__name__} {code}".strip()] += 1
                if client is not None:
                    await close_quietly(client)
                client = None  # the same body goes again on the next session
                await asyncio.sleep(1)
        if client is not None:
            await close_quietly(client)

    async def _ack_received(self, client: ChatClient, conversation: str) -> None:
        orders = [
            e["message"]["order"]
            for e in client.inbox
            if e.get("type") == "message.new" and e["message"]["conversation"] == conversation
        ]
        client.inbox.clear()  # nobody reads them here: keep the process small
        if orders:
            await asyncio.wait_for(
                client.request("delivery.ack", conversation=conversation, up_to=max(orders)), 10
            )

    def stop(self) -> None:
        self.stopping = True

        async def finish() -> None:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

        self.loop.run(finish(), timeout=60)
        self.loop.close()

    def check(self, rig: Rig) -> list[str]:
        """Every acknowledged client_id stored exactly once, at the acknowledged order."""
        stored: dict[str, tuple[int, int]] = {}  # client_id -> (order, rows)
        for conversation in set(self.conversations.values()):
            for cid, order, n in rig.query(
                'SELECT client_id, MIN("order"), COUNT(*) FROM chat_message '
                "WHERE conversation_id = ? GROUP BY client_id",
                hexid(conversation),
            ):
                stored[hexid(cid)] = (order, n)
        problems = [f"stored {n} times: {cid}" for cid, (_, n) in stored.items() if n > 1]
        for cid, order in self.acked.items():
            if cid not in stored:
                problems.append(f"acknowledged, not stored: {cid}")
            elif stored[cid][0] != order:
                problems.append(f"{cid} acknowledged as {order}, stored as {stored[cid][0]}")
        problems += [f"{e} ({n}x)" for e, n in self.errors.items() if e.startswith("order")]
        self.stats["stored"] = sum(n for _, n in stored.values())
        return problems


# --- the plot -------------------------------------------------------------------------


def plot(rows: list[dict], events: list[tuple[float, str]], start: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [(r["time"] - start) / 60 for r in rows]
    workers = sorted({k.split("_")[0] for k in rows[0] if k.startswith("worker")})

    def series(key: str, scale: float = 1.0) -> list[float]:
        return [r[key] / scale if r[key] is not None else float("nan") for r in rows]

    figure, axes = plt.subplots(
        4, 1, figsize=(11, 10), sharex=True, gridspec_kw={"height_ratios": [3, 3, 3, 1.4]}
    )
    for worker in workers:
        axes[0].plot(minutes, series(f"{worker}_rss_kib", 1024), marker=".", label=worker)
        axes[2].plot(minutes, series(f"{worker}_connections"), marker=".", label=worker)
    axes[0].set_ylabel("daphne RSS (MiB)")
    axes[1].plot(minutes, series("redis_used_memory", 2**20), marker=".", color="tab:red")
    axes[1].set_ylabel("Redis used_memory (MiB)")
    axes[2].set_ylabel("ESTABLISHED\nconnections")
    kinds = ["database locked", "redis down", "redis up", "worker killed", "worker restarted"]
    for row, kind in enumerate(kinds):
        words = kind.split()
        times = [
            (at - start) / 60
            for at, what in events
            if what.startswith(words[0])
            and (
                words[1] in what
                or (kind == "redis down" and ("stopped" in what or "killed" in what))
                or (kind == "redis up" and "started" in what)
            )
        ]
        axes[3].scatter(times, [row] * len(times), marker="|", s=120)
    axes[3].set_yticks(range(len(kinds)), kinds, fontsize=8)
    axes[3].set_ylim(-0.7, len(kinds) - 0.3)
    axes[3].set_xlabel("minutes")
    for axis in axes[:3]:
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper left")
    axes[2].legend(loc="upper left")
    figure.suptitle("SecureChat soak: simulated users + the fault-injecting state machine")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def figures(rows: list[dict]) -> dict:
    def span(key: str) -> dict:
        values = [r[key] for r in rows if r.get(key) is not None]
        return {"min": min(values), "max": max(values)} if values else {}

    result = {"samples": len(rows), "redis_used_memory": span("redis_used_memory")}
    for key in rows[0]:
        if key.endswith(("_rss_kib", "_connections")):
            result[key] = span(key)
    return result


# --- main -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--users", type=int, default=20, help="simulated users of the load")
    parser.add_argument("--send-every", type=float, default=3, help="seconds between sends")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    examples = int(os.environ.get("SOAK_EXAMPLES") or 100_000)
    steps = int(os.environ.get("SOAK_STEPS") or 30)

    out = args.out / time.strftime("soak-%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    print(f"soak: {args.minutes} min, {args.users} users, results in {out}", flush=True)
    redis_server = RedisServer(out / "redis")
    stack = ChatStack(out / "var", redis_server.url, workers=2)
    rig = load = sampler = None
    failures: list[str] = []
    load_problems: list[str] = []
    try:
        load = Load(stack, args.users, args.send_every)
        stack.seed(*USERS, *load.names)
        rig = Rig(stack, redis_server)
        load.prepare()
        sampler = Sampler(stack, redis_server, load, rig.report, args.interval, out / "samples.csv")
        sampler.start()
        load.start()
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            try:
                run_machine(rig, examples=examples, steps=steps, stop_at=deadline)
            except Exception:
                failures.append(traceback.format_exc())
                print(f"soak: a machine run failed ({len(failures)} so far)", flush=True)
            load.machine_runs += 1
            print(
                f"soak: machine run {load.machine_runs} ended after "
                f"{rig.report.counts['examples']} examples in all; load acked "
                f"{load.stats['acked']} (errors {load.stats['errors']})",
                flush=True,
            )
        rig.heal()
        time.sleep(2)
    finally:
        if load is not None:
            load.stop()
        if sampler is not None:
            sampler.stopping.set()
            sampler.join()
        if load is not None and rig is not None:
            load_problems = load.check(rig)
        if rig is not None:
            rig.close()
        stack.stop()
        redis_server.stop()

    rows = sampler.rows
    plot(rows, rig.report.events, sampler.start_time, out / "soak.png")
    summary = {
        "minutes": args.minutes,
        "users": args.users,
        "machine": {
            "runs": load.machine_runs,
            "examples": rig.report.counts["examples"],
            "max_steps": steps,
        },
        "figures": figures(rows),
        "load": dict(load.stats),
        "load_errors": dict(load.errors),
        "load_problems": load_problems,
        "report": rig.report.as_dict(),
        "machine_failures": failures,
        "faults": [[round(at - sampler.start_time, 1), what] for at, what in rig.report.events],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "failures.txt").write_text("\n\n".join(failures) or "none\n")
    print(json.dumps({k: summary[k] for k in ("machine", "figures", "load")}, indent=2))
    print(f"soak: {len(failures)} machine failures, {len(load_problems)} load problems")
    print(f"soak: {out / 'samples.csv'}, {out / 'soak.png'}, {out / 'summary.json'}")
    return 1 if failures or load_problems else 0


if __name__ == "__main__":
    sys.exit(main())
