"""The client as people get it: `pip install ./client` into a fresh virtual environment
outside the repository, then the README's example for two users in two processes,
run twice in a row against a real server. Each run sends and receives; the second uses
the keys, certificates and conversation of the first."""

import json
import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

from testing.processes import ROOT, ChatStack

CLIENT = ROOT / "client"
EXAMPLE_HEADING = "## Example: two people, two terminals"
RUN_TIMEOUT = 120


def readme_example() -> str:
    """The first python block after the example's heading in client/README.md."""
    readme = (CLIENT / "README.md").read_text()
    section = readme.split(EXAMPLE_HEADING, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def outside_env(**variables: str) -> dict[str, str]:
    """This process's environment without anything pointing into the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return {**env, **variables}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv (outside the repository) with the package installed; its python."""
    home = tmp_path_factory.mktemp("installed-client")
    assert ROOT not in home.parents
    venv.EnvBuilder(with_pip=True, clear=True).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", CLIENT],
        check=True,
        cwd=home,
        env=outside_env(),
        timeout=600,
    )
    return python


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("installed-stack"), redis_server.url)
    server.seed("alice", "bob")
    yield server
    server.stop()


def test_the_package_imports_from_its_own_install_without_the_repository(installed, tmp_path):
    probe = (
        "import json, sys, securechat_client, securechat_client._cryptokit.membership as m; "
        "print(json.dumps([securechat_client.__file__, m.__name__, 'cryptokit' in sys.modules, "
        "[p for p in sys.path if p.startswith(sys.argv[1])]]))"
    )
    result = subprocess.run(
        [installed, "-c", probe, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=outside_env(),
    )
    location, vendored, top_level_cryptokit, repository_paths = json.loads(result.stdout)
    assert "site-packages" in location and not location.startswith(str(ROOT))
    assert vendored == "securechat_client._cryptokit.membership"
    assert top_level_cryptokit is False and repository_paths == []


def test_the_readme_example_works_for_two_people_run_twice(installed, stack, tmp_path):
    script = tmp_path / "chat.py"
    script.write_text(readme_example())
    keys = tmp_path / "keys"

    def start(me: str, peer: str) -> subprocess.Popen:
        env = outside_env(
            SECURECHAT_URL=stack.url,
            SECURECHAT_KEYS=str(keys),
            SECURECHAT_PASSWORD=stack.password(me),
            SECURECHAT_KEY_PASSPHRASE=f"{me}'s key passphrase",
        )
        return subprocess.Popen(
            [installed, script, me, peer],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    serials_after_first_run = None
    for run in (1, 2):
        processes = {"alice": start("alice", "bob"), "bob": start("bob", "alice")}
        for me, process in processes.items():
            try:
                out, err = process.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            peer = "bob" if me == "alice" else "alice"
            assert process.returncode == 0, f"run {run}, {me}: {out}\n{err[-3000:]}"
            assert f"{peer}: hello {me}, this is {peer}" in out, f"run {run}, {me}: {out}"
        serials = {me: (keys / me / "serials.json").read_text() for me in processes}
        if serials_after_first_run is None:
            serials_after_first_run = serials
        assert serials == serials_after_first_run  # the same certificates: nothing re-made
        for me in processes:
            pem = (keys / me / "signing.pem").read_bytes()
            assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
