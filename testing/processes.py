"""Start and stop the real servers the tests talk to: redis-server and daphne; and break
them on purpose (stop and restart Redis, SIGKILL a worker, lock the database) to prove
the chat survives it."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """A throw-away redis-server on a free loopback port, persisting nothing.

    `stop()` then `start()` brings it back on the same port and URL, empty (nothing is
    persisted), as after a crash: clients reconnect to the address they know."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start it (again) on its port; a no-op while it runs."""
        if self.running:
            return
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, f"redis-server on port {self.port}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running else None

    def ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def used_memory(self) -> int | None:
        """INFO memory `used_memory` in bytes; None while it is down."""
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=1)
            return int(client.info("memory")["used_memory"])
        except redis.RedisError:
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, connections reset, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run manage.py in a child process with `env`; raise with its output on failure."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def server_env(var_dir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DEBUG="1",
        SECURECHAT_VAR_DIR=str(var_dir),
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="securechat.settings",
    )
    env.update(extra)
    return env


class DaphneServer:
    """A real daphne process serving securechat.asgi on a free loopback port."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = Path(env["SECURECHAT_VAR_DIR"]) / f"daphne-{self.port}.log"
        self._log = self.log_path.open("ab")  # a restart on the same port appends
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "securechat.asgi:application",
            ],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._answers, 30, f"daphne on port {self.port}")
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"daphne did not start:\n{self.log()}") from None

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"daphne exited:\n{self.log()}")
        try:
            httpx.get(f"{self.url}/accounts/login/", timeout=1)
            return True
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL: no close frames, no cleanup, as when the machine dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()


class DatabaseLock:
    """Hold SQLite's write lock (`BEGIN EXCLUSIVE`) from another connection for `seconds`,
    in a thread: the server's writers wait on it (its busy timeout) as behind a slow
    transaction. In WAL mode readers go on. `with lock:` holds it for the block's length
    (at most `seconds`, then waits for the release); `start()`/`join()` leave it running
    while the caller does other things."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path, self.seconds = path, seconds
        self.acquired = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._hold, name="sqlite-lock", daemon=True)

    def _hold(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                db.execute("BEGIN EXCLUSIVE")
                self.acquired.set()
                time.sleep(self.seconds)
                db.execute("ROLLBACK")
            finally:
                db.close()
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.acquired.set()

    def start(self) -> "DatabaseLock":
        """Start holding; returns once the lock is held."""
        self._thread.start()
        self.acquired.wait(timeout=60)
        if self.error is not None:
            raise RuntimeError(f"could not lock {self.path}: {self.error}") from self.error
        return self

    @property
    def held(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise RuntimeError(f"locking {self.path} failed: {self.error}") from self.error

    def __enter__(self) -> "DatabaseLock":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.join()


class ChatStack:
    """A migrated database with a PKI, seeded users and one or more daphne workers that
    share it and one Redis: the whole server as production runs it."""

    PASSWORD = "a-long-test-passphrase-{name}"

    def __init__(self, var_dir: Path, redis_url: str, *, workers: int = 1, **settings: str) -> None:
        self.var_dir = var_dir
        self.env = server_env(var_dir, redis_url, **settings)
        manage(self.env, "migrate", "--skip-checks", "-v", "0")
        manage(self.env, "init_pki")
        self.workers: list[DaphneServer] = []
        for _ in range(workers):
            self.workers.append(DaphneServer(self.env))

    @property
    def url(self) -> str:
        return self.workers[0].url

    @property
    def database_path(self) -> Path:
        return self.var_dir / "db.sqlite3"

    def password(self, name: str) -> str:
        return self.PASSWORD.format(name=name)

    # --- fault injection ------------------------------------------------------------

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index`; its sockets drop without a close frame."""
        self.workers[index].kill()

    def restart_worker(self, index: int) -> DaphneServer:
        """A new daphne for worker `index` on the same port with the same environment
        (stopped first if it still runs); returns once it answers."""
        old = self.workers[index]
        old.stop()
        deadline = time.monotonic() + 10
        while True:  # the old listening socket may take a moment to go away
            try:
                self.workers[index] = DaphneServer(self.env, port=old.port)
                return self.workers[index]
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def lock_database(self, seconds: float = 1.0) -> DatabaseLock:
        """A `DatabaseLock` on this stack's SQLite file (not started: `with` it, or
        `start()` it)."""
        return DatabaseLock(self.database_path, seconds)

    def seed(self, *names: str) -> None:
        rows = [
            {"username": n, "display_name": n.title(), "password": self.password(n)} for n in names
        ]
        path = self.var_dir / f"seed-{'-'.join(names)}.json"
        path.write_text(json.dumps(rows))
        manage(self.env, "seed_users", "--file", str(path))

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
