from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import ContactForm, RegistrationForm, ThrottledAuthenticationForm
from accounts.models import User
from accounts.services import add_contact, remove_contact


class ThrottledLoginView(LoginView):
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "accounts/register.html", {"form": form})


@login_required
def contacts(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            add_contact(request.user, form.cleaned_data["username"])
        except User.DoesNotExist:
            form.add_error("username", "No such user.")
        else:
            return redirect("accounts:contacts")
    return render(
        request,
        "accounts/contacts.html",
        {"form": form, "contacts": request.user.contacts.order_by("username")},
    )


@login_required
@require_POST
def contact_remove(request: HttpRequest, username: str) -> HttpResponse:
    remove_contact(request.user, username)
    messages.info(request, f"{username} removed from your contacts.")
    return redirect("accounts:contacts")
