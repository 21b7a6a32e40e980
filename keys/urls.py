from django.urls import path

from keys import api

app_name = "keys"

urlpatterns = [
    path("ca/", api.authority, name="authority"),
    path("challenge/", api.challenge, name="challenge"),
    path("register/", api.register, name="register"),
    path("users/<str:username>/", api.user_certificates, name="user_certificates"),
    path("certificates/<str:serial>/", api.certificate, name="certificate"),
    path("revocations/", api.revocations, name="revocations"),
    path("crl/", api.crl, name="crl"),
    path("revoke/", api.revoke_own, name="revoke"),
    path("backup/", api.backup, name="backup"),
]
