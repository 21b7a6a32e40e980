"""Which database the tests use: never the caller's DATABASE_URL (testing/env.py), and on
PostgreSQL only a database made for the run and dropped after it (testing/postgres.py)."""

import os
import subprocess
import sys

import pytest

from testing import postgres
from testing.processes import ROOT


def _database_url_seen_by_tests(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != postgres.TEST_DATABASE_URL}
    result = subprocess.run(
        [sys.executable, "-c", "import os, testing.env; print(os.environ['DATABASE_URL'])"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_callers_database_url_is_never_the_tests_one():
    seen = _database_url_seen_by_tests(DATABASE_URL="postgres://app@db.example.org/production")
    assert seen.startswith("sqlite:///") and "production" not in seen


def test_the_database_made_for_the_run_is_the_tests_one():
    made = "postgres://postgres@127.0.0.1:5999/securechat_ci_0123abcd"
    seen = _database_url_seen_by_tests(
        DATABASE_URL="postgres://app@db.example.org/production",
        **{postgres.TEST_DATABASE_URL: made},
    )
    assert seen == made


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own (never the machine's)."""
    try:
        postgres._bin_dir()
    except RuntimeError as exc:
        pytest.fail(f"{exc}; .ci/run installs it (apt-get install postgresql)")
    with postgres.own_server() as address:
        yield address


def _databases(host: str, port: int) -> set[str]:
    with postgres._connect(host, port) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database")}


def test_the_run_database_and_its_test_twin_are_dropped_after_the_run(own_postgres):
    host, port = own_postgres
    before = _databases(host, port)
    with postgres.run_database(host, port) as url:
        name = url.rsplit("/", 1)[1]
        assert name.startswith("securechat_ci_") and name in _databases(host, port)
        with postgres._connect(host, port) as connection:  # as pytest-django would
            connection.execute(f'CREATE DATABASE "test_{name}"')
    assert _databases(host, port) == before


def test_the_runner_hands_over_the_url_and_the_exit_code(monkeypatch):
    try:
        postgres._bin_dir()
    except RuntimeError as exc:
        pytest.fail(f"{exc}; .ci/run installs it (apt-get install postgresql)")
    monkeypatch.setenv("SECURECHAT_PG_OWN_SERVER", "1")
    code = "import os, sys, psycopg; psycopg.connect(os.environ[sys.argv[1]]).close(); sys.exit(7)"
    assert postgres.main(["--", sys.executable, "-c", code, postgres.TEST_DATABASE_URL]) == 7
