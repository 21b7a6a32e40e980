"""/csp-report/: one log line per violation, only the directive and the blocked URI,
nothing past the size cap."""

import json
import logging

import pytest
from django.test import Client
from django.urls import reverse


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def csp_log():
    """What web.csp logs (the suite runs with -p no:logging, so caplog is not there)."""
    logger = logging.getLogger("web.csp")
    handler = Lines()
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@pytest.fixture
def browser_client():
    """CSRF enforced, as for a real browser: reports come without our token."""
    return Client(enforce_csrf_checks=True)


def post(client, body, content_type="application/csp-report"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(reverse("csp_report"), data=data, content_type=content_type)


def test_a_violation_is_logged_once_with_directive_and_blocked_uri_only(browser_client, csp_log):
    report = {
        "csp-report": {
            "document-uri": "http://127.0.0.1/?secret-document-token",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "blocked-uri": "https://cdn.example.org/evil.js?token=secret-query#frag",
            "script-sample": "secret-sample",
            "original-policy": "default-src 'self'",
        }
    }
    response = post(browser_client, report)
    assert response.status_code == 204
    assert [(r.levelname, r.getMessage()) for r in csp_log] == [
        (
            "WARNING",
            "CSP violation: directive=script-src-elem blocked=https://cdn.example.org/evil.js",
        )
    ]
    assert "secret" not in csp_log[0].getMessage()


def test_reporting_api_bodies_log_one_line_per_violation(browser_client, csp_log):
    reports = [
        {"type": "csp-violation", "body": {"effectiveDirective": "style-src-attr"}},
        {
            "type": "csp-violation",
            "body": {"effectiveDirective": "connect-src", "blockedURL": "ws://127.0.0.1:1/"},
        },
        {"type": "deprecation", "body": {"message": "not a violation"}},
    ]
    response = post(browser_client, reports, "application/reports+json")
    assert response.status_code == 204
    assert [r.getMessage() for r in csp_log] == [
        "CSP violation: directive=style-src-attr blocked=none",
        "CSP violation: directive=connect-src blocked=ws://127.0.0.1:1/",
    ]


def test_a_hostile_report_cannot_forge_log_lines(browser_client, csp_log):
    report = {"csp-report": {"effective-directive": "script-src\nFAKE", "blocked-uri": "a\nb c"}}
    post(browser_client, report)
    assert [r.getMessage() for r in csp_log] == ["CSP violation: directive=unknown blocked=a?b?c"]


def test_an_oversize_report_is_refused_and_not_logged(browser_client, csp_log, settings):
    padding = "x" * settings.CSP_REPORT_MAX_BYTES
    report = {"csp-report": {"effective-directive": "img-src", "blocked-uri": padding}}
    response = post(browser_client, report)
    assert response.status_code == 413
    assert csp_log == []


def test_a_report_that_is_not_json_is_refused(browser_client, csp_log):
    assert post(browser_client, b"not json").status_code == 400
    assert csp_log == []


def test_only_post_is_accepted(browser_client):
    assert browser_client.get(reverse("csp_report")).status_code == 405
