"""Content Security Policy on every response, and the endpoint violations are reported to.

The policy (settings.CSP_DIRECTIVES, each directive overridable by environment) allows
scripts and styles from our own origin only: no 'unsafe-inline', no 'unsafe-eval'. The
one inline element we render, the chat page's import map, is allowed by the hash of its
exact text, which the view attaches to its response with `allow_script_sources`.
A page's injected script therefore cannot run even if an XSS bug lets it into the HTML:
for an end-to-end encrypted client that is where the keys are.

`'self'` in connect-src also allows ws:// and wss:// to our own host and port (CSP
Level 3 "self" matching; web/tests/test_browser.py proves it in Chromium).

Django's admin needs nothing looser: in Django 5.2 it has no inline script or style
attribute (its scripts read their data from data- attributes), and its pages, change
forms and widgets raise no violation in Chromium (web/tests/test_browser.py). So /admin/
gets the same policy as every other page.
"""

import json
import logging
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger(__name__)

EXTRA_SCRIPT_SOURCES = "_csp_extra_script_sources"
# One report body carries at most this many violations worth a log line; a page that
# breaks the policy in a loop should not be able to flood the log through us.
MAX_VIOLATIONS_PER_REPORT = 20


def allow_script_sources(response: HttpResponse, *sources: str) -> HttpResponse:
    """Add `sources` (e.g. `'sha256-…'` of an inline import map) to this response's
    script-src, and to no other response's."""
    extra = getattr(response, EXTRA_SCRIPT_SOURCES, ())
    setattr(response, EXTRA_SCRIPT_SOURCES, (*extra, *(s for s in sources if s)))
    return response


def policy(extra_script_sources: tuple[str, ...] = ()) -> str:
    """The policy header value, with `extra_script_sources` added to script-src."""
    directives = dict(settings.CSP_DIRECTIVES)
    if extra_script_sources:
        directives["script-src"] = " ".join([directives["script-src"], *extra_script_sources])
    parts = [f"{name} {value}".strip() for name, value in directives.items()]
    if settings.CSP_REPORT_URI:
        parts.append(f"report-uri {settings.CSP_REPORT_URI}")
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Sets the policy on every response that does not already carry one. Listed first
    in MIDDLEWARE so that redirects and static files get it too."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        header = (
            "Content-Security-Policy-Report-Only"
            if settings.CSP_REPORT_ONLY
            else "Content-Security-Policy"
        )
        if header not in response:
            extra = getattr(response, EXTRA_SCRIPT_SOURCES, ())
            response[header] = policy(extra)
        return response


_DIRECTIVE = re.compile(r"^[a-z-]{1,40}$")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


def _directive(value) -> str:
    value = str(value or "").strip().split(" ")[0]
    return value if _DIRECTIVE.match(value) else "unknown"


def _blocked(value) -> str:
    """The blocked URI without query or fragment (they may carry tokens), printable,
    bounded: it goes into a log line."""
    value = str(value or "")
    parts = urlsplit(value) if "://" in value else None
    if parts is not None and parts.scheme:
        value = f"{parts.scheme}://{parts.netloc}{parts.path}"
    value = _UNPRINTABLE.sub("?", value)[:200]
    return value or "none"


def _violations(payload) -> list[tuple[str, str]]:
    """(directive, blocked URI) pairs from a `report-uri` body (application/csp-report)
    or a Reporting API body (application/reports+json)."""
    found = []
    if isinstance(payload, dict) and isinstance(payload.get("csp-report"), dict):
        report = payload["csp-report"]
        directive = report.get("effective-directive") or report.get("violated-directive")
        found.append((_directive(directive), _blocked(report.get("blocked-uri"))))
    elif isinstance(payload, list):
        for item in payload:
            body = item.get("body") if isinstance(item, dict) else None
            if isinstance(body, dict) and item.get("type") == "csp-violation":
                directive = body.get("effectiveDirective") or body.get("violatedDirective")
                found.append((_directive(directive), _blocked(body.get("blockedURL"))))
    return found[:MAX_VIOLATIONS_PER_REPORT]


@csrf_exempt  # browsers send reports without our CSRF token, by design
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Log one WARNING line per reported violation: the directive and the blocked URI
    only (a report also carries the page URL and a sample of the blocked code, which
    may hold what we never log). Bodies over CSP_REPORT_MAX_BYTES are refused (413)."""
    limit = settings.CSP_REPORT_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponse(status=400)
    if declared > limit:
        return HttpResponse(status=413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return HttpResponse(status=413)
    try:
        payload = json.loads(body)
    except ValueError:
        return HttpResponse(status=400)
    for directive, blocked in _violations(payload):
        logger.warning("CSP violation: directive=%s blocked=%s", directive, blocked)
    return HttpResponse(status=204)
