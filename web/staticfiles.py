"""Static files served by daphne itself, in development and in production.

Why WhiteNoise rather than Django's ASGIStaticFilesHandler: the handler is documented as
a development convenience (no cache headers beyond Last-Modified, no precompressed
variants, no ETag), whereas WhiteNoise is built for production: ETag and 304s, range
requests, `Cache-Control: immutable` for the build's hashed names and the `.br`/`.gz`
twins that frontend/build.mjs writes. With WHITENOISE_USE_FINDERS it serves straight from
the apps' static directories, so no `collectstatic` step is needed before starting.

WhiteNoise 6 is WSGI-era middleware: its response streams a file through a synchronous
iterator, which Django's ASGI handler can only drain with a warning (and into a list).
Our static files are small, hashed and few, so this subclass reads them whole into an
ordinary response instead, which both handlers send as is.
"""

import os

from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    def add_files(self, root, prefix=None) -> None:
        # STATIC_ROOT exists only where someone ran collectstatic; without it the finders
        # serve everything, which is no reason to warn on every start.
        if self.autorefresh or os.path.isdir(root):
            super().add_files(root, prefix)

    @staticmethod
    def serve(static_file, request: HttpRequest) -> HttpResponse:
        served = static_file.get_response(request.method, request.META)
        body = b""
        if served.file is not None:
            try:
                body = served.file.read()
            finally:
                served.file.close()
        response = HttpResponse(body, status=int(served.status))
        del response["Content-Type"]  # WhiteNoise's own headers say what it is
        for name, value in served.headers:
            response[name] = value
        return response
