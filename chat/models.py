"""Conversations and their ciphertext. No plaintext message or key is ever stored."""

import uuid

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    class KeyOrigin(models.TextChoices):
        SERVER = "server"  # the server makes and wraps each epoch key, then forgets it
        MEMBERS = "members"  # a member's client makes it: the server cannot read

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=120, blank=True)
    key_origin = models.CharField(max_length=8, choices=KeyOrigin.choices, default=KeyOrigin.SERVER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    current_epoch = models.PositiveIntegerField(default=0)
    # members mode: the epoch announced but not yet keyed; messages wait for it
    pending_epoch = models.PositiveIntegerField(null=True, blank=True)
    pending_reason = models.CharField(max_length=12, blank=True)
    last_order = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.title or str(self.id)


class Membership(models.Model):
    """One stint of a user in a conversation; leaving closes it, rejoining opens another."""

    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined = models.DateTimeField(auto_now_add=True)
    left = models.DateTimeField(null=True, blank=True)
    removed = models.BooleanField(default=False)
    last_sequence = models.PositiveBigIntegerField(default=0)
    delivered_upto = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "user"],
                condition=models.Q(left__isnull=True),
                name="one_open_membership",
            )
        ]
        indexes = [models.Index(fields=["user", "left"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class Invitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        CANCELLED = "cancelled"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="invitations"
    )
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    answered = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["invitee", "status"])]

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.status})"


class KeyEpoch(models.Model):
    """A conversation key generation: its signed distribution record and wrapped keys."""

    class Reason(models.TextChoices):
        CREATED = "created"
        JOINED = "joined"
        LEFT = "left"
        REMOVED = "removed"
        KEY_REVOKED = "key_revoked"
        KEY_CHANGED = "key_changed"
        ROTATION = "rotation"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="epochs")
    number = models.PositiveIntegerField()
    reason = models.CharField(max_length=12, choices=Reason.choices)
    created = models.DateTimeField(auto_now_add=True)
    signer = models.CharField(max_length=150)  # a username, or "server"
    signer_serial = models.CharField(max_length=40)
    signature = models.BinaryField()
    message_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "number"], name="one_epoch_number")
        ]

    def __str__(self) -> str:
        return f"epoch {self.number} of {self.conversation_id}"


class WrappedKey(models.Model):
    """An epoch key encrypted (RSA-OAEP) to one member's encryption certificate."""

    epoch = models.ForeignKey(KeyEpoch, on_delete=models.CASCADE, related_name="wrapped_keys")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    certificate_serial = models.CharField(max_length=40)
    wrapped_key = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["epoch", "member"], name="one_key_per_member")
        ]
        indexes = [models.Index(fields=["member", "epoch"])]

    def __str__(self) -> str:
        return f"key of {self.member_id} for {self.epoch}"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    order = models.PositiveBigIntegerField()  # per conversation, assigned by the server
    epoch = models.PositiveIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sender_serial = models.CharField(max_length=40)
    sequence = models.PositiveBigIntegerField()
    client_id = models.UUIDField()
    timestamp_ms = models.PositiveBigIntegerField()
    iv = models.BinaryField()
    ciphertext = models.BinaryField()
    signature = models.BinaryField()
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "order"], name="one_order"),
            models.UniqueConstraint(fields=["sender", "client_id"], name="one_client_id"),
        ]
        indexes = [models.Index(fields=["conversation", "epoch"])]

    def __str__(self) -> str:
        return f"message {self.order} in {self.conversation_id}"
