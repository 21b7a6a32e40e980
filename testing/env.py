"""pytest plugin loaded with -p before Django: test-safe environment defaults.

Settings read the environment at import, which pytest-django does before any conftest
runs; hence a plugin. REDIS_URL points at a closed port until the session fixture starts
a dedicated redis-server, so no test can touch a developer's own Redis by accident.
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECURECHAT_VAR_DIR", tempfile.mkdtemp(prefix="securechat-test-var-"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:9/0")
os.environ.setdefault("SECURECHAT_CA_PASSPHRASE", "test-ca-passphrase")
