"""Production settings and system checks, run in child processes with real environments."""

import os
import subprocess
import sys

from testing.processes import ROOT

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "chat.example.org",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "SECURE_HSTS_PRELOAD": "1",
}


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = run_manage(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_without_secret_key_fails_with_a_clear_message():
    env = {**PRODUCTION, "SECRET_KEY": ""}
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_a_malformed_boolean_fails_loudly():
    result = run_manage({**PRODUCTION, "DEBUG": "maybe"}, "check")
    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_development_generates_a_private_secret_key_once(tmp_path):
    env = {"DEBUG": "1", "SECURECHAT_VAR_DIR": str(tmp_path)}
    run_manage(env, "check")
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    assert len(first) >= 50 and (key_file.stat().st_mode & 0o777) == 0o600
    run_manage(env, "check")
    assert key_file.read_text() == first
