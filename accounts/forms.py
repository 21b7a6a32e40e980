from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from accounts.models import User
from accounts.services import InvalidCredentials, authenticate_user
from accounts.throttle import LoginThrottled


class RegistrationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "display_name")


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, with throttling and one message for every failure."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct username and password.",
    }

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        ip = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        try:
            self.user_cache = authenticate_user(username, password, ip)
        except LoginThrottled as exc:
            raise forms.ValidationError(str(exc), code="throttled") from None
        except InvalidCredentials:
            raise self.get_invalid_login_error() from None
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class ContactForm(forms.Form):
    username = forms.CharField(max_length=150)
