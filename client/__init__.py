"""The Python client's home in the repository. The library is `securechat_client`
(`pip install ./client` installs it); in the repository it is also importable under its
older name `client.securechat_client`. Both names are the same module objects, never two
copies, so an exception class imported under one name is the class raised under the
other."""

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

NAME = "securechat_client"


def _library():
    """The library from this tree, unless a copy is already imported (then that one: a
    second copy would have its own exception classes)."""
    if NAME not in sys.modules:
        home = Path(__file__).parent / NAME
        spec = importlib.util.spec_from_file_location(
            NAME, home / "__init__.py", submodule_search_locations=[str(home)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[NAME]
            raise
    return sys.modules[NAME]


securechat_client = _library()
sys.modules[f"{__name__}.{NAME}"] = securechat_client
for _info in pkgutil.iter_modules(securechat_client.__path__):
    sys.modules[f"{__name__}.{NAME}.{_info.name}"] = importlib.import_module(f"{NAME}.{_info.name}")
