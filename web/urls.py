from django.urls import path

from web.csp import csp_report
from web.views import chat

# Not namespaced: "home" is LOGIN_REDIRECT_URL and what the accounts views redirect to.
urlpatterns = [
    path("", chat, name="home"),
    path("csp-report/", csp_report, name="csp_report"),
]
