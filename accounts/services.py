"""Account rules, callable from views, the admin, commands and tests alike."""

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from accounts.models import User
from accounts.throttle import check_login_allowed, clear_login_failures, record_login_failure


class InvalidCredentials(Exception):
    """Wrong username or password; deliberately does not say which."""


def authenticate_user(username: str, password: str, ip: str) -> User:
    """Check throttling, then the password; raise LoginThrottled or InvalidCredentials."""
    check_login_allowed(username, ip)
    # ModelBackend hashes a dummy password for unknown users, so timing does not reveal
    # whether the username exists.
    user = authenticate(username=username, password=password)
    if user is None:
        record_login_failure(username, ip)
        raise InvalidCredentials("Please enter a correct username and password.")
    clear_login_failures(username)
    return user


def register_user(username: str, password: str, display_name: str = "") -> User:
    """Create a user after Django's password validators accept the password."""
    user = User(username=username, display_name=display_name)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


@transaction.atomic
def add_contact(owner: User, username: str) -> User:
    contact = User.objects.get(username=username, is_active=True)
    if contact.pk != owner.pk:
        owner.contacts.add(contact)
    return contact


def remove_contact(owner: User, username: str) -> None:
    owner.contacts.remove(*User.objects.filter(username=username))
