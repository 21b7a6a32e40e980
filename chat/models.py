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
    # members mode: the one member asked to make the pending key; nobody else may submit it
    pending_asked = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # the epoch whose record last changed the member list; statements are bound to it
    roster_epoch = models.PositiveIntegerField(default=0)
    last_order = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.title or str(self.id)

    def save(self, *args, **kwargs) -> None:
        # Key origin is bound into every signed record and clients refuse a change; the
        # server refuses it too, so no code path (admin, shell, service) can flip it.
        update_fields = kwargs.get("update_fields")
        if not self._state.adding and (update_fields is None or "key_origin" in update_fields):
            stored = (
                type(self).objects.filter(pk=self.pk).values_list("key_origin", flat=True).first()
            )
            if stored is not None and stored != self.key_origin:
                raise ValueError("A conversation's key origin never changes.")
        super().save(*args, **kwargs)


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
    delivered_upto = models.PositiveBigIntegerField(default=0)
    # False: a message request. Put in by someone who is not a mutual contact, the member
    # has not accepted yet: no presence flows through it, the client shows it as a request.
    accepted = models.BooleanField(default=True)

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
    # members mode: the inviter's signed "add" (replaced when the inviter invites again)
    statement = models.ForeignKey(
        "MembershipChange", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

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
        KEY_FAILED = "key_failed"  # a member reported that their key did not open

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="epochs")
    number = models.PositiveIntegerField()
    reason = models.CharField(max_length=12, choices=Reason.choices)
    created = models.DateTimeField(auto_now_add=True)
    signer = models.CharField(max_length=150)  # a username, or "server"
    signer_serial = models.CharField(max_length=40)
    signature = models.BinaryField()
    # the signed chain link: the epoch this record follows, and the roster it starts/keeps
    key_origin = models.CharField(max_length=8, default="server")
    previous_epoch = models.PositiveIntegerField(default=0)
    roster_epoch = models.PositiveIntegerField(default=0)
    message_count = models.PositiveIntegerField(default=0)
    reported = models.BooleanField(default=False)  # a member said its key did not open

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "number"], name="one_epoch_number")
        ]

    def __str__(self) -> str:
        return f"epoch {self.number} of {self.conversation_id}"


class WrappedKey(models.Model):
    """An epoch key encrypted (RSA-OAEP) to one member's encryption certificate; a member
    with no usable key is listed with an empty serial and key, so the record still names
    them (a member is never dropped from a record silently)."""

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


class MembershipChange(models.Model):
    """A member-signed membership statement (members mode): an addition signed by the
    inviter, a leave by the leaver, a removal by the owner. Clients check them; the
    server only stores, checks and relays them."""

    class Action(models.TextChoices):
        ADD = "add"
        LEAVE = "leave"
        REMOVE = "remove"

    class State(models.TextChoices):
        PROPOSED = "proposed"  # an invitation not answered yet
        PENDING = "pending"  # in effect, waiting for the record that applies it
        APPLIED = "applied"
        VOID = "void"  # declined, cancelled or replaced

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="membership_changes"
    )
    action = models.CharField(max_length=6, choices=Action.choices)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    actor_serial = models.CharField(max_length=40)
    roster_epoch = models.PositiveIntegerField()
    nonce = models.BinaryField()
    signature = models.BinaryField()
    subject_signing_sha256 = models.BinaryField(default=b"")
    subject_encryption_sha256 = models.BinaryField(default=b"")
    state = models.CharField(max_length=8, choices=State.choices)
    applied_in = models.ForeignKey(
        KeyEpoch, null=True, blank=True, on_delete=models.CASCADE, related_name="changes"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "state"])]

    def __str__(self) -> str:
        return f"{self.action} {self.subject_id} by {self.actor_id} ({self.state})"


class DeviceSequence(models.Model):
    """The newest sequence number each sending device used in a conversation: replays are
    refused per device, so any number of tabs of one user send interleaved."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device = models.CharField(max_length=32)
    last_sequence = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "sender", "device"], name="one_counter_per_device"
            )
        ]

    def __str__(self) -> str:
        return f"device {self.device} of {self.sender_id} in {self.conversation_id}"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    order = models.PositiveBigIntegerField()  # per conversation, assigned by the server
    epoch = models.PositiveIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sender_serial = models.CharField(max_length=40)
    device = models.CharField(max_length=32, default="")  # the sending device (a tab, a session)
    sequence = models.PositiveBigIntegerField()  # per (conversation, sender, device)
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


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it announces; a publisher
    in each worker sends it to the channel layer after the commit and marks it sent, and
    whatever a Redis outage or a dead worker left unsent is sent later (chat/outbox.py)."""

    groups = models.JSONField()  # channel-layer group names
    event = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True)  # a worker is sending it
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["sent_at", "id"])]

    def __str__(self) -> str:
        return f"outbox {self.pk} ({'sent' if self.sent_at else 'pending'})"
