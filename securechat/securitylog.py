"""Security log lines: one line per event on the `securechat.security` logger, as
`<event> key=value key="value with spaces"`, so an operator can grep and parse them.

Values are made safe for one line: control characters (a newline in a revocation reason
typed by a user) become spaces, quotes and backslashes are escaped, and each value is cut
at 200 characters. Callers pass names, serials and reasons, never a password, key or
message content.
"""

import logging
import re

logger = logging.getLogger("securechat.security")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_BARE = re.compile(r"^[A-Za-z0-9_.:@/+,-]+$")
MAX_VALUE = 200


def _value(raw: object) -> str:
    text = "-" if raw is None or raw == "" else _CONTROL.sub(" ", str(raw))[:MAX_VALUE]
    if _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_event(event: str, fields: dict[str, object]) -> str:
    return " ".join([event, *(f"{key}={_value(value)}" for key, value in fields.items())])


def security_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one security event, e.g. `security_event("certificate.revoked", actor="root")`."""
    logger.log(level, "%s", format_event(event, fields))
