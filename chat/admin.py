"""Django admin for conversations: metadata only; ciphertext is never shown."""

from django.contrib import admin
from django.http import HttpRequest

from chat.models import Conversation, Invitation, KeyEpoch, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "joined", "left", "removed")
    readonly_fields = fields
    extra = 0
    can_delete = False


class KeyEpochInline(admin.TabularInline):
    model = KeyEpoch
    fields = ("number", "reason", "signer", "created", "message_count")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "key_origin", "created_by", "created", "current_epoch", "last_order")
    list_filter = ("key_origin",)
    search_fields = ("title", "memberships__user__username")
    fields = (
        "title",
        "key_origin",
        "created_by",
        "created",
        "current_epoch",
        "pending_epoch",
        "last_order",
    )
    readonly_fields = fields
    inlines = [MembershipInline, KeyEpochInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start from a client, with keys

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # read-only (no Save button); deleting stays, audited (adminsite.py)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("conversation", "inviter", "invitee", "status", "created", "answered")
    list_filter = ("status",)
    readonly_fields = ("conversation", "inviter", "invitee", "status", "created", "answered")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # read-only: the invitee answers, the inviter cancels
