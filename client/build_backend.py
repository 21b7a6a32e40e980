"""Build backend of securechat-client: setuptools, on a copy of the package that carries
the repository's cryptokit inside it.

The library imports `cryptokit`, the protocol's cryptographic rules, written once for the
server and the client. A wheel cannot lean on the repository, and a top-level `cryptokit`
of ours would clash with an unrelated package of that name on PyPI, so the build copies
cryptokit into the package as `securechat_client._cryptokit` and points every import at
that copy. The copy is made in a temporary directory: the source tree stays as it is. An
sdist made here already holds the copy; building from it uses it as it is."""

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from setuptools import build_meta as setuptools_backend

HERE = Path(__file__).resolve().parent
PACKAGE = "securechat_client"
VENDORED = "_cryptokit"
REPOSITORY_CRYPTOKIT = HERE.parent / "cryptokit"
PROJECT_FILES = ("pyproject.toml", "README.md", "MANIFEST.in", "build_backend.py")
CRYPTOKIT_IMPORT = re.compile(r"^(\s*)from cryptokit(\.[\w.]+)? import ", re.MULTILINE)
LEFT_OVER_IMPORT = re.compile(r"^\s*(from|import) cryptokit\b", re.MULTILINE)


def vendor_cryptokit(root: Path) -> None:
    """Copy cryptokit's modules (not its tests or vectors) into the package under `root`
    and point every `from cryptokit…` of the package at the copy."""
    target = root / PACKAGE / VENDORED
    target.mkdir()
    for module in sorted(REPOSITORY_CRYPTOKIT.glob("*.py")):
        shutil.copy2(module, target / module.name)
    for path in (root / PACKAGE).rglob("*.py"):
        source = path.read_text()
        rewritten = CRYPTOKIT_IMPORT.sub(rf"\1from {PACKAGE}.{VENDORED}\2 import ", source)
        if LEFT_OVER_IMPORT.search(rewritten):
            raise RuntimeError(f"{path.name}: an import of cryptokit this build cannot point.")
        path.write_text(rewritten)


@contextlib.contextmanager
def staged():
    """Run the enclosed setuptools hook on a vendored copy (or on an sdist as it is)."""
    if not (REPOSITORY_CRYPTOKIT / "__init__.py").exists():
        if not (HERE / PACKAGE / VENDORED).is_dir():
            raise RuntimeError(
                "securechat-client builds from the SecureChat repository (it vendors "
                "../cryptokit) or from an sdist made there; neither is here."
            )
        yield
        return
    with tempfile.TemporaryDirectory(prefix="securechat-client-build-") as temporary:
        root = Path(temporary)
        for name in PROJECT_FILES:
            shutil.copy2(HERE / name, root / name)
        shutil.copytree(
            HERE / PACKAGE, root / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        vendor_cryptokit(root)
        before = os.getcwd()
        os.chdir(root)
        try:
            yield
        finally:
            os.chdir(before)


# --- PEP 517 hooks: setuptools' own, in the staged copy ------------------------------
# Output directories are made absolute first: the hooks run in another directory.


def get_requires_for_build_wheel(config_settings=None):
    with staged():
        return setuptools_backend.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    with staged():
        return setuptools_backend.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.abspath(metadata_directory)
    with staged():
        return setuptools_backend.prepare_metadata_for_build_wheel(target, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    target = os.path.abspath(wheel_directory)
    with staged():
        return setuptools_backend.build_wheel(target, config_settings)


def build_sdist(sdist_directory, config_settings=None):
    target = os.path.abspath(sdist_directory)
    with staged():
        return setuptools_backend.build_sdist(target, config_settings)
