from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import (
    ContactForm,
    RegistrationForm,
    SearchListingForm,
    ThrottledAuthenticationForm,
    ThrottledPasswordChangeForm,
)
from accounts.models import User
from accounts.services import (
    add_contact,
    mutual_contact_names,
    remove_contact,
    set_search_listing,
)


class ThrottledLoginView(LoginView):
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="accounts.backends.ThrottledModelBackend")
        return redirect("home")
    return render(request, "accounts/register.html", {"form": form})


@login_required
def contacts(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST if "username" in request.POST else None)
    listing = SearchListingForm(
        request.POST if "listing" in request.POST else None,
        initial={"listed": request.user.is_listed_in_search},
    )
    if listing.is_bound and listing.is_valid():
        set_search_listing(request.user, listing.cleaned_data["listed"])
        messages.info(request, "Saved.")
        return redirect("accounts:contacts")
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
        {
            "form": form,
            "listing": listing,
            "contacts": request.user.contacts.order_by("username"),
            "mutual": mutual_contact_names(request.user),
        },
    )


@login_required
@require_POST
def contact_remove(request: HttpRequest, username: str) -> HttpResponse:
    remove_contact(request.user, username)
    messages.info(request, f"{username} removed from your contacts.")
    return redirect("accounts:contacts")


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm
    success_url = "/accounts/password/done/"

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "ip": self.request.META.get("REMOTE_ADDR")}
