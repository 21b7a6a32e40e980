"""Account rules, callable from views, the admin, commands and tests alike."""

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from accounts import throttle
from accounts.models import LoginLockout, User
from securechat.securitylog import security_event


def check_credentials(
    username: str, ip: str | None, check_password: Callable[[], User | None]
) -> User | None:
    """The throttled password check every login path goes through (accounts.backends):
    count the attempt first, then check; raise LoginThrottled or LoginUnavailable instead of
    checking. `ip` is None for a check made without a request (a shell, a script)."""
    attempt = throttle.reserve_attempt(username, ip)
    user = check_password()
    if user is None:
        _login_failed(username, attempt)
        return None
    try:
        throttle.attempt_succeeded(attempt)
    except redis.RedisError as exc:
        # The password was right: refusing now protects nothing. The pair counter simply
        # runs out with its window.
        security_event(
            "login.unforgiven",
            logging.WARNING,
            user=attempt.username_hash,
            ip=attempt.address,
            error=type(exc).__name__,
        )
    return user


def _login_failed(username: str, attempt: throttle.Attempt) -> None:
    security_event(
        "login.failed",
        logging.WARNING,
        user=attempt.username_hash,
        ip=attempt.address,
        pair=f"{attempt.pair}/{settings.LOGIN_FAILURE_LIMIT}",
        username=attempt.username,
        ip_count=attempt.ip,
    )
    # Counts are unique per window (INCR), so each limit is reported once, by the attempt
    # that reached it.
    reached = [
        (LoginLockout.Scope.PAIR, attempt.pair, settings.LOGIN_FAILURE_LIMIT, attempt.pair_ttl),
        (LoginLockout.Scope.ADDRESS, attempt.ip, settings.LOGIN_IP_FAILURE_LIMIT, attempt.ip_ttl),
        (
            LoginLockout.Scope.USERNAME,
            attempt.username,
            settings.LOGIN_USERNAME_SOFT_LIMIT,
            attempt.username_ttl,
        ),
    ]
    for scope, count, limit, ttl in reached:
        if count == limit:
            _record_lockout(username, attempt, scope, ttl)


def _record_lockout(username: str, attempt: throttle.Attempt, scope: str, ttl: int) -> None:
    security_event(
        "login.locked",
        logging.WARNING,
        scope=scope,
        user=attempt.username_hash,
        ip=attempt.address,
        seconds=ttl,
    )
    now = timezone.now()
    LoginLockout.objects.filter(
        until__lt=now - timedelta(days=settings.LOGIN_LOCKOUT_KEEP_DAYS)
    ).delete()
    LoginLockout.objects.create(
        scope=scope,
        username_hash=attempt.username_hash,
        address=attempt.address,
        user=User.objects.filter(username=username).first(),
        until=now + timedelta(seconds=ttl),
    )


def _lockout_keys(lockout: LoginLockout) -> list[str]:
    if lockout.scope == LoginLockout.Scope.PAIR:
        return [throttle.pair_key(lockout.username_hash, lockout.address)]
    if lockout.scope == LoginLockout.Scope.USERNAME:
        return [
            throttle.username_key(lockout.username_hash),
            throttle.gate_key(lockout.username_hash),
        ]
    return [throttle.address_key(lockout.address)]


def unlock_lockouts(lockouts: Iterable[LoginLockout], by: User) -> int:
    """Lift these lockouts now (delete their Redis counters); raise LoginUnavailable when
    Redis does not answer. Returns how many were lifted."""
    lifted = 0
    for lockout in lockouts:
        throttle.clear(_lockout_keys(lockout))
        LoginLockout.objects.filter(pk=lockout.pk).update(
            unlocked_at=timezone.now(), unlocked_by=by
        )
        security_event(
            "login.unlocked",
            logging.WARNING,
            scope=lockout.scope,
            user=lockout.username_hash,
            ip=lockout.address,
            actor=by.username,
        )
        lifted += 1
    return lifted


def unlock_user_logins(user: User, by: User) -> None:
    """Clear every login counter of this account, from every address (not the addresses'
    own counters, which other accounts share), and close its open lockout records."""
    user_hash = throttle.username_hash(user.username)
    throttle.clear(throttle.username_keys(user_hash))
    LoginLockout.objects.filter(
        username_hash=user_hash,
        scope__in=[LoginLockout.Scope.PAIR, LoginLockout.Scope.USERNAME],
        unlocked_at__isnull=True,
    ).update(unlocked_at=timezone.now(), unlocked_by=by)
    security_event(
        "login.unlocked", logging.WARNING, scope="account", user=user_hash, actor=by.username
    )


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


def mutual_contacts(owner: User):
    """The owner's contacts who added the owner back (the one rule of contact consent: only
    they see the owner's presence, and only they start conversations that are not requests)."""
    return owner.contacts.filter(contacts=owner)


def mutual_contact_names(owner: User) -> set[str]:
    return set(mutual_contacts(owner).values_list("username", flat=True))


def set_search_listing(user: User, listed: bool) -> None:
    """Whether the user appears in other users' "who is online" search."""
    user.listed_in_search = listed
    user.save(update_fields=["listed_in_search"])
