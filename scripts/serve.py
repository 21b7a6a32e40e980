"""`make run`: make sure Redis answers, prepare the database and PKI, serve with daphne.

Redis: if nothing answers at REDIS_URL and the URL is on loopback, a project-local
redis-server is started on that port (data under var/redis) and stopped with daphne.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "securechat.settings")
REDIS_URL = os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
VAR_DIR = Path(os.environ.get("SECURECHAT_VAR_DIR", ROOT / "var"))
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")
DEMO_USERS = ["alice", "bob", "carol"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def fail(sentence: str) -> None:
    print(f"make run: {sentence}", file=sys.stderr)
    sys.exit(1)


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def start_local_redis() -> subprocess.Popen:
    url = urlparse(REDIS_URL)
    binary = shutil.which("redis-server")
    if url.hostname not in LOOPBACK:
        fail(f"Redis does not answer at {REDIS_URL}; start it or point REDIS_URL elsewhere.")
    if binary is None:
        fail(
            f"Redis does not answer at {REDIS_URL} and redis-server is not installed: "
            "install it (Debian: apt-get install redis-server)."
        )
    data_dir = VAR_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = str(url.port or 6379)
    process = subprocess.Popen(
        [
            binary,
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
    )
    for _ in range(100):
        if redis_answers():
            print(f"make run: started a project-local redis-server on port {port}")
            return process
        time.sleep(0.1)
    process.terminate()
    fail(f"the project-local redis-server did not start; see {data_dir / 'redis.log'}")
    raise AssertionError  # unreachable: fail() exits


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, check=True)


def prepare_database() -> None:
    import django

    django.setup()
    manage("migrate", "--noinput", "-v", "0", "--skip-checks")
    manage("init_pki")
    manage("check")
    from accounts.models import User

    if not User.objects.exists():
        print("make run: empty database, creating demo users (passwords shown once):")
        manage("seed_users", *DEMO_USERS)
        manage("issue_demo_keys", *DEMO_USERS)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    children: list[subprocess.Popen] = []
    if not redis_answers():
        children.append(start_local_redis())
    try:
        prepare_database()
        print(f"make run: serving on http://{HOST}:{PORT}/ (Ctrl-C stops)", flush=True)
        daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", HOST, "-p", PORT, "securechat.asgi:application"],
            cwd=ROOT,
        )
        children.insert(0, daphne)
        signal.signal(signal.SIGTERM, lambda *_: daphne.terminate())
        try:
            daphne.wait()
        except KeyboardInterrupt:
            daphne.terminate()
            daphne.wait()
    except subprocess.CalledProcessError as exc:
        fail(f"'{' '.join(exc.cmd[1:])}' failed (exit {exc.returncode}); see the output above.")
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=10)


if __name__ == "__main__":
    main()
