from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, UserCreationForm

from accounts.backends import login_refusal
from accounts.models import User
from accounts.services import check_credentials
from accounts.throttle import LoginRefused


class RegistrationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "display_name")


class ThrottleMessageMixin:
    """Say why a login was refused without a check (throttled, Redis down) instead of
    "wrong password"; the throttling itself happens in accounts.backends."""

    def get_invalid_login_error(self) -> forms.ValidationError:
        refusal = login_refusal(self.request)
        if refusal is not None:
            return forms.ValidationError(str(refusal), code="throttled")
        return super().get_invalid_login_error()


class ThrottledAuthenticationForm(ThrottleMessageMixin, AuthenticationForm):
    """Django's login form, with one message for every failure."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct username and password.",
    }


class ThrottledAdminAuthenticationForm(ThrottleMessageMixin, AdminAuthenticationForm):
    """The admin's login form (admin.site.login_form, set in accounts.admin)."""


class ContactForm(forms.Form):
    username = forms.CharField(max_length=150)


class SearchListingForm(forms.Form):
    listed = forms.BooleanField(
        required=False,
        label="Show me to others in “who is online”",
        help_text=(
            "People you share a conversation with, and mutual contacts, see your status anyway."
        ),
    )


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change, with the old password checked through the same throttle
    as every login: a stolen session cannot be used to guess the password at full speed."""

    def __init__(self, user, *args, ip: str | None = None, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.ip = ip

    def clean_old_password(self) -> str:
        old = self.cleaned_data["old_password"]
        try:
            checked = check_credentials(
                self.user.username,
                self.ip,
                lambda: self.user if self.user.check_password(old) else None,
            )
        except LoginRefused as refusal:
            raise forms.ValidationError(str(refusal), code="throttled") from None
        if checked is None:
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old
