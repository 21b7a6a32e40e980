"""The built browser client as the page needs it: hashed URLs, SRI values, an import map.

frontend/build.mjs writes web/static/web/dist/manifest.json (file names, sizes, SHA-384
integrity, which files are the entry script and stylesheet). This module reads it once
per build (cached on the file's mtime and size, so a rebuild during `make run` is picked
up without a restart) and turns it into what templates/web/chat.html renders.

The entry script and stylesheet carry their `integrity` attributes. Chunks the entry
imports (statically, or lazily like the DSA code) are fetched by the module loader, which
has no attribute to carry a hash; an import map's `"integrity"` section gives one to
each of them. The import map is an inline script, so its exact text is allowed by a
`'sha256-…'` source in `script-src` rather than by 'unsafe-inline'.
"""

import base64
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger(__name__)

DIST_PREFIX = "web/dist/"


class FrontendNotBuilt(Exception):
    """The manifest is missing or unusable; the message says which and what to run."""


@dataclass(frozen=True)
class Asset:
    name: str
    url: str
    integrity: str


@dataclass(frozen=True)
class Bundle:
    script: Asset
    stylesheet: Asset
    # The exact text of the <script type="importmap"> element ("" when there are no
    # chunks), and the CSP source that allows exactly that text.
    import_map: SafeString
    import_map_hash: str
    files: dict[str, dict]

    @property
    def build_id(self) -> str:
        """What an operator compares with a published build: the entry's SHA-384."""
        return self.script.integrity


def csp_hash(text: str) -> str:
    """The `'sha256-…'` CSP source allowing an inline element whose text is `text`."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _asset(files: dict, name: str) -> Asset:
    if name not in files:
        raise FrontendNotBuilt(f"the manifest names {name} but does not describe it")
    integrity = files[name].get("integrity", "")
    if not integrity.startswith("sha384-"):
        raise FrontendNotBuilt(f"the manifest has no sha384 integrity for {name}")
    return Asset(name=name, url=static(DIST_PREFIX + name), integrity=integrity)


def parse_manifest(path: Path) -> Bundle:
    """Read `path` into a Bundle, or raise FrontendNotBuilt saying what is wrong."""
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        script = _asset(files, manifest["entry"]["js"])
        stylesheet = _asset(files, manifest["entry"]["css"])
    except FileNotFoundError:
        raise FrontendNotBuilt(f"{path} is missing") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FrontendNotBuilt(f"{path} is unreadable ({type(exc).__name__})") from None
    chunks = {
        _asset(files, name).url: files[name]["integrity"]
        for name in sorted(files)
        if name.endswith(".js") and name != script.name
    }
    if chunks:
        # Compact, sorted and with "<" escaped: the text must be byte-identical to what
        # the hash was computed over, and must not be able to close its <script>.
        text = json.dumps({"integrity": chunks}, separators=(",", ":"), sort_keys=True)
        text = text.replace("<", "\\u003c")
        import_map, import_map_hash = mark_safe(text), csp_hash(text)  # noqa: S308
    else:
        import_map, import_map_hash = mark_safe(""), ""
    return Bundle(script, stylesheet, import_map, import_map_hash, files)


_cache: dict[tuple, Bundle] = {}
_lock = threading.Lock()


def load_bundle() -> Bundle:
    """The current build's Bundle; raises FrontendNotBuilt when there is none."""
    path = Path(settings.FRONTEND_MANIFEST)
    try:
        stat = path.stat()
    except OSError:
        raise FrontendNotBuilt(f"{path} is missing") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size, settings.STATIC_URL)
    with _lock:
        bundle = _cache.get(key)
        if bundle is None:
            bundle = parse_manifest(path)
            _cache.clear()
            _cache[key] = bundle
    return bundle


def get_bundle() -> Bundle | None:
    """The current build's Bundle, or None (logged) when the front-end is not built."""
    try:
        return load_bundle()
    except FrontendNotBuilt as exc:
        logger.error("the front-end is not built: %s; run make run (it builds it)", exc)
        return None
