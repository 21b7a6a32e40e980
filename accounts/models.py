from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A SecureChat user; `is_staff` marks administrators."""

    display_name = models.CharField(max_length=80, blank=True)
    contacts = models.ManyToManyField(
        "self", symmetrical=False, related_name="contact_of", blank=True
    )

    def __str__(self) -> str:
        return self.username

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username
