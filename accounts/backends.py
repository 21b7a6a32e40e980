"""The only authentication backend (settings.AUTHENTICATION_BACKENDS): Django's
ModelBackend behind the login throttle, so the site login, the admin login and any later
login that calls django.contrib.auth.authenticate() are throttled alike."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.services import check_credentials
from accounts.throttle import LoginRefused


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs,
    ):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        check = super().authenticate
        # Without a request (a shell, a script) every check counts under one shared address.
        ip = request.META.get("REMOTE_ADDR", "") if request is not None else None
        try:
            return check_credentials(
                username, ip, lambda: check(request, username, password, **kwargs)
            )
        except LoginRefused as refusal:
            # authenticate() swallows PermissionDenied and returns None; the login forms
            # read the reason here to say why (accounts.forms.ThrottleMessageMixin).
            if request is not None:
                request.login_refusal = refusal
            raise


def login_refusal(request: HttpRequest | None) -> LoginRefused | None:
    """Why the last authenticate() on this request refused without checking, if it did."""
    return getattr(request, "login_refusal", None)
