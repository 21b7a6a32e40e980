"""frontend/build.mjs on a small client of its own: chunks, manifest, SRI, the size budget."""

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testing.processes import ROOT

FRONTEND = ROOT / "frontend"


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


def incompressible_module(kib: int) -> str:
    """A module whose gzipped size is about `kib` KiB: random bytes in base64 keep their
    entropy through gzip (4 characters of 6 bits each per 3 bytes)."""
    blob = base64.b64encode(os.urandom(kib * 1024)).decode()
    return f'export const blob = "{blob}";\n'


def build(tmp_path: Path, sources: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a copy of build.mjs in tmp_path/frontend on `sources`; output lands in
    tmp_path/web/static/web/dist, as it does in the repository."""
    if not (FRONTEND / "node_modules" / "esbuild").exists() or not shutil.which("node"):
        pytest.fail("node or frontend/node_modules is missing: run make test (it runs npm ci)")
    frontend = tmp_path / "frontend"
    (frontend / "src" / "styles").mkdir(parents=True)
    shutil.copy(FRONTEND / "build.mjs", frontend)
    shutil.copy(FRONTEND / "package.json", frontend)
    (frontend / "node_modules").symlink_to(FRONTEND / "node_modules")
    for name, text in sources.items():
        (frontend / "src" / name).write_text(text)
    return subprocess.run(
        ["node", "build.mjs"], cwd=frontend, capture_output=True, text=True, timeout=120
    )


def test_a_dynamic_import_gets_its_own_chunk_outside_the_budget(tmp_path):
    result = build(
        tmp_path,
        {
            "main.js": 'import { x } from "./shared.js";\n'
            'export const load = () => import("./dsa.js");\nconsole.log(x);\n',
            "shared.js": "export const x = 1;\n",
            "dsa.js": 'import { x } from "./shared.js";\n'
            + incompressible_module(300)
            + "export const y = x;\n",
            "styles/app.css": "body { color: #123; }\n",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    dist = tmp_path / "web" / "static" / "web" / "dist"
    manifest = json.loads((dist / "manifest.json").read_text())
    files = manifest["files"]
    entry = manifest["entry"]
    assert entry["js"].startswith("main-") and entry["css"].startswith("app-")
    [lazy] = [name for name, f in files.items() if f["kind"] == "lazy"]
    assert lazy.startswith("dsa-") and files[lazy]["gzip_size"] > 250 * 1024
    assert entry["js"] in manifest["eager_js"] and lazy not in manifest["eager_js"]
    assert manifest["eager_js_gzip_size"] < 250 * 1024
    for name, described in files.items():
        body = (dist / name).read_bytes()
        assert described["integrity"] == sri(body)
        assert described["size"] == len(body)
    big = dist / lazy
    assert gzip.decompress((dist / f"{lazy}.gz").read_bytes()) == big.read_bytes()
    assert "entry JS + static imports" in result.stdout


def test_an_entry_over_the_budget_fails_the_build_and_writes_no_manifest(tmp_path):
    result = build(
        tmp_path,
        {
            "main.js": 'import { blob } from "./big.js";\nconsole.log(blob.length);\n',
            "big.js": incompressible_module(300),
            "styles/app.css": "",
        },
    )
    assert result.returncode == 1
    assert "over budget" in result.stderr
    assert not (tmp_path / "web" / "static" / "web" / "dist" / "manifest.json").exists()


def test_a_rebuild_removes_the_files_of_the_previous_build(tmp_path):
    sources = {"main.js": "console.log(1);\n", "styles/app.css": ""}
    assert build(tmp_path, sources).returncode == 0
    dist = tmp_path / "web" / "static" / "web" / "dist"
    first = {p.name for p in dist.iterdir()}
    (tmp_path / "frontend" / "src" / "main.js").write_text("console.log(2);\n")
    result = subprocess.run(
        ["node", "build.mjs"], cwd=tmp_path / "frontend", capture_output=True, text=True
    )
    assert result.returncode == 0
    second = {p.name for p in dist.iterdir()}
    old_entry = next(n for n in first if n.startswith("main-") and n.endswith(".js"))
    assert old_entry not in second
