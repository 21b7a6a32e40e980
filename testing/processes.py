"""Start and stop the real servers the tests talk to: redis-server and daphne."""

import json
import os
import shutil
import socket
import subprocess
import sys
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
    """A throw-away redis-server on a free loopback port, persisting nothing."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--logfile",
                str(workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        self.process.terminate()
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
        self._log = self.log_path.open("wb")
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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


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
