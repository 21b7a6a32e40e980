from django.contrib import admin
from django.urls import include, path

from securechat.health import healthz

urlpatterns = [
    path("", include("web.urls")),  # the chat page ("home") and /csp-report/
    path("accounts/", include("accounts.urls")),
    path("api/keys/", include("keys.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),  # for load balancers: no login, no cache
]
