"""Run a command (the test suite) against PostgreSQL, in a database made for the run:

    python -m testing.postgres -- .venv/bin/pytest accounts keys ...

Uses a server that lets the `postgres` role in over TCP without a password at
SECURECHAT_PG_HOST:SECURECHAT_PG_PORT (default 127.0.0.1:5432, as a CI machine may run
one); otherwise starts its own (`initdb` + `pg_ctl`, trust auth, loopback only, a free
port) in a temporary directory, as the postgres user when run as root, and stops and
removes it afterwards. Either way the command sees only `securechat_ci_<random>`: created
here, handed over in SECURECHAT_TEST_DATABASE_URL (testing/env.py turns it into the tests'
DATABASE_URL; pytest-django makes `test_securechat_ci_<random>` beside it), both dropped at
the end, whatever the outcome.

Loaded into pytest with `-p testing.postgres`, it also keeps only the tests that use that
database (pytest_collection_modifyitems below). testing/env.py imports it before pytest
loads it as a plugin, hence: PYTEST_DONT_REWRITE (it asserts nothing).
"""

import argparse
import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# testing/env.py reads this; nothing else decides which database the tests use.
TEST_DATABASE_URL = "SECURECHAT_TEST_DATABASE_URL"
ROLE = "postgres"


def _connect(host: str, port: int, dbname: str = "postgres"):
    import psycopg  # only the PostgreSQL run needs it at import time

    return psycopg.connect(
        host=host, port=port, user=ROLE, dbname=dbname, connect_timeout=3, autocommit=True
    )


def _answers(host: str, port: int) -> bool:
    import psycopg

    try:
        _connect(host, port).close()
        return True
    except psycopg.OperationalError:
        return False  # nothing there, or it wants a password we do not have


def _bin_dir() -> Path:
    """Where initdb and pg_ctl are: on PATH, or Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(candidates[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: then run it as the postgres system user."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as postgres")
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    from testing.processes import free_port

    return free_port()


@contextmanager
def own_server() -> Iterator[tuple[str, int]]:
    """A throw-away PostgreSQL server: trust auth, loopback only, no fsync (a test run
    needs no durability); stopped and deleted on exit."""
    binaries, port = _bin_dir(), _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="securechat-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres", group="postgres")
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "-A", "trust"]
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(workdir / "server.log")
    start = [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"]
    try:
        for command in ([*initdb, "-E", "UTF8", "--no-sync"], start):
            subprocess.run(
                _as_postgres(command), check=True, capture_output=True, text=True, timeout=120
            )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL:\n{exc.stdout}\n{exc.stderr}") from None
    try:
        yield "127.0.0.1", port
    finally:
        subprocess.run(
            _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def a_server() -> Iterator[tuple[str, int]]:
    host = os.environ.get("SECURECHAT_PG_HOST", "127.0.0.1")
    port = int(os.environ.get("SECURECHAT_PG_PORT", "5432"))
    if os.environ.get("SECURECHAT_PG_OWN_SERVER") != "1" and _answers(host, port):
        print(f"testing.postgres: using the server at {host}:{port}", flush=True)
        yield host, port
        return
    with own_server() as (host, port):
        print(f"testing.postgres: started a server at {host}:{port}", flush=True)
        yield host, port


@contextmanager
def run_database(host: str, port: int) -> Iterator[str]:
    """A new empty database; its URL. Dropped on exit with the test database pytest-django
    makes beside it (normally dropped by pytest-django already)."""
    name = f"securechat_ci_{secrets.token_hex(4)}"
    with _connect(host, port) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{ROLE}@{host}:{port}/{name}"
    finally:
        with _connect(host, port) as admin:
            for dropped in (f"test_{name}", name):
                admin.execute(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')


def pytest_collection_modifyitems(config, items) -> None:
    """As a pytest plugin (`-p testing.postgres`, `make test-postgres`): keep the tests that
    use the database in this process. The others drive servers started by the test, which
    keep a SQLite file of their own whatever this run's database (server_env): here they
    would only repeat the SQLite run, at minutes' cost."""
    if not os.environ.get(TEST_DATABASE_URL):
        return
    keep, drop = [], []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        uses_db = item.get_closest_marker("django_db") or fixtures & {"db", "transactional_db"}
        (keep if uses_db else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    command = parser.parse_args(argv).command
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        parser.error("give the command to run after --")
    with a_server() as (host, port), run_database(host, port) as url:
        print(f"testing.postgres: database {url.rsplit('/', 1)[1]}", flush=True)
        return subprocess.run(command, env={**os.environ, TEST_DATABASE_URL: url}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
