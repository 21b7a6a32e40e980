from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from web.bundle import get_bundle
from web.csp import allow_script_sources


@login_required
def chat(request: HttpRequest) -> HttpResponse:
    """The browser client: an empty #app the entry script fills. Without a build the page
    says so instead of loading nothing."""
    bundle = get_bundle()
    response = render(request, "web/chat.html", {"bundle": bundle})
    if bundle is not None:
        allow_script_sources(response, bundle.import_map_hash)
    return response
