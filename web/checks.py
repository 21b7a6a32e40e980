"""System checks: the front-end is built, and the policy still means something."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

from web.bundle import FrontendNotBuilt, load_bundle

UNSAFE_SCRIPT_SOURCES = ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:")


@register(Tags.staticfiles)
def check_frontend_built(app_configs, **kwargs) -> list[Warning]:
    try:
        load_bundle()
    except FrontendNotBuilt as exc:
        return [
            Warning(
                f"The front-end is not built: {exc}.",
                hint="Run make run or make test (both build it), or "
                "cd frontend && npm ci && npm run build.",
                id="web.W001",
            )
        ]
    return []


@register(Tags.security)
def check_script_policy(app_configs, **kwargs) -> list[Warning]:
    sources = settings.CSP_DIRECTIVES.get("script-src", "").split()
    weak = [source for source in sources if source in UNSAFE_SCRIPT_SOURCES]
    if weak:
        return [
            Warning(
                f"CSP_SCRIPT_SRC allows {' '.join(weak)}.",
                hint="An injected script could then read the keys the client holds; "
                "keep script-src to 'self'.",
                id="web.W002",
            )
        ]
    return []
