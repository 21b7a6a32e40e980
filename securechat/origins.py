"""The WebSocket handshake's Origin check: exactly the site's own scheme://host:port.

Channels' AllowedHostsOriginValidator compares host names only, so any other service on
the same host (another port, another scheme) could open a socket carrying the user's
cookie. Here an Origin is accepted only when it is

* the origin of the request itself: scheme from the connection (or from the proxy's
  header when SECURE_PROXY_SSL_HEADER is set, as Django's `is_secure()`), host and port
  from the Host header, which must pass ALLOWED_HOSTS; or
* listed in CSRF_TRUSTED_ORIGINS (the origins Django already trusts for POSTs; a
  `*.example.org` entry matches subdomains as in Django's CSRF check).

A missing Origin is refused: browsers always send one, so only a non-browser client can
omit it, and it can send its own (the Python client does). Anything else gets 403."""

from typing import NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int


def parse_origin(text: str) -> Origin | None:
    """`scheme://host[:port]` with an http(s) scheme, nothing else (no path, no user)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return Origin(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme])


def _allowed_hosts() -> list[str]:
    # As Django's HttpRequest.get_host(): DEBUG with no ALLOWED_HOSTS means local names.
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


def own_origin(host_header: str | None, *, secure: bool) -> Origin | None:
    """The origin a browser on this site sends: None when Host is missing or not allowed."""
    if not host_header:
        return None
    domain, _port = split_domain_port(host_header)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return parse_origin(f"{'https' if secure else 'http'}://{host_header}")


def _trusted(origin: Origin, entry: str) -> bool:
    if "://*." in entry:  # a subdomain wildcard, as Django's CSRF check reads it
        pattern = parse_origin(entry.replace("://*.", "://", 1))
        return (
            pattern is not None
            and (origin.scheme, origin.port) == (pattern.scheme, pattern.port)
            and origin.host.endswith("." + pattern.host)
        )
    return parse_origin(entry) == origin


def origin_allowed(origin_header: str | None, *, host_header: str | None, secure: bool) -> bool:
    """The rule of this module; plain values in, so it is tested without a server."""
    origin = parse_origin(origin_header) if origin_header else None
    if origin is None:
        return False
    if origin == own_origin(host_header, secure=secure):
        return True
    return any(_trusted(origin, entry) for entry in settings.CSRF_TRUSTED_ORIGINS)


def _header(scope: dict, name: bytes) -> str | None:
    """The one value of header `name`; None when absent, repeated or not Latin-1 text."""
    values = [value for key, value in scope.get("headers", []) if key == name]
    if len(values) != 1:
        return None
    try:
        return values[0].decode("latin-1")
    except UnicodeDecodeError:
        return None


def scope_is_secure(scope: dict) -> bool:
    """Django's `request.is_secure()` for an ASGI scope: the proxy's header, when one is
    configured and present, decides; else the connection's own scheme."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        meta_name, secure_value = proxy_header
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, name)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in ("wss", "https")


class ExactOriginValidator:
    """ASGI middleware for the websocket router: 403 unless `origin_allowed`."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        allowed = origin_allowed(
            _header(scope, b"origin"),
            host_header=_header(scope, b"host"),
            secure=scope_is_secure(scope),
        )
        if not allowed:
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
