"""pytest plugin loaded with -p before Django: test-safe environment defaults.

Settings read the environment at import, which pytest-django does before any conftest
runs; hence a plugin. REDIS_URL points at a closed port until the session fixture starts
a dedicated redis-server, so no test can touch a developer's own Redis by accident.
"""

import os
import tempfile

from testing.postgres import TEST_DATABASE_URL

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECURECHAT_VAR_DIR", tempfile.mkdtemp(prefix="securechat-test-var-"))
# The one place that decides which database tests use. In-process tests: the database
# `testing/postgres.py` made for this run (pytest-django creates `test_<name>` beside it),
# else SQLite (in memory for pytest-django); never the caller's DATABASE_URL, which may be a
# real one. Server processes started by tests get a SQLite file in their own var dir
# (testing/processes.py `server_env`).
os.environ["DATABASE_URL"] = os.environ.get(TEST_DATABASE_URL) or (
    f"sqlite:///{os.environ['SECURECHAT_VAR_DIR']}/db.sqlite3"
)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:9/0")
os.environ.setdefault("SECURECHAT_CA_PASSPHRASE", "test-ca-passphrase")
