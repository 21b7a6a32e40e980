from django.contrib import admin
from django.urls import include, path

from securechat.views import home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("api/keys/", include("keys.urls")),
    path("admin/", admin.site.urls),
]
