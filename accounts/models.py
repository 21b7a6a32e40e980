from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A SecureChat user; `is_staff` marks administrators."""

    display_name = models.CharField(max_length=80, blank=True)
    contacts = models.ManyToManyField(
        "self", symmetrical=False, related_name="contact_of", blank=True
    )
    # Shown in "who is online" (users.search)? None: the default, listed unless staff
    # (administrators are not advertised to every user unless they opt in).
    listed_in_search = models.BooleanField(null=True, blank=True, default=None)
    # Users this user refuses conversations and invitations from.
    blocked = models.ManyToManyField(
        "self", symmetrical=False, related_name="blocked_by", blank=True
    )

    def __str__(self) -> str:
        return self.username

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username

    @property
    def is_listed_in_search(self) -> bool:
        return self.listed_in_search if self.listed_in_search is not None else not self.is_staff


class LoginLockout(models.Model):
    """A login limit that was reached (accounts.throttle), for the admin to see and lift.

    The counters themselves live in Redis and end on their own; this row is the record. It
    names the account only when one exists with the name that was tried (a typed name may be
    a mistyped password), otherwise only by the keyed hash the logs use."""

    class Scope(models.TextChoices):
        PAIR = "pair", "this username from this address"
        USERNAME = "username", "this username from many addresses (soft delay)"
        ADDRESS = "ip", "this address, many usernames"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    username_hash = models.CharField(max_length=64, db_index=True)
    address = models.CharField(max_length=64, help_text="IPv4, or the IPv6 /64")
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    until = models.DateTimeField(db_index=True)
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlocked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} ({self.address})"
