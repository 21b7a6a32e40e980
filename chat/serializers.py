"""The protocol's objects (docs/protocol.md §4.2), built from models."""

from chat.models import Conversation, Invitation, KeyEpoch, Message
from chat.services.statements import statement_json
from securechat.jsonapi import b64


def conversation_json(conversation: Conversation) -> dict:
    members = getattr(conversation, "active_members", None)  # prefetched by list pages
    if members is None:
        members = (
            conversation.memberships.filter(left__isnull=True)
            .select_related("user")
            .order_by("joined", "pk")
        )
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "key_origin": conversation.key_origin,
        "created_by": conversation.created_by.username,
        "epoch": conversation.current_epoch,
        "epoch_pending": conversation.pending_epoch is not None,
        "last_order": conversation.last_order,
        "members": [
            {
                "username": m.user.username,
                "display_name": m.user.shown_name,
                "role": m.role,
                "accepted": m.accepted,  # false: a message request not accepted yet
            }
            for m in members
        ],
    }


def invitation_json(invitation: Invitation) -> dict:
    return {
        "id": invitation.pk,
        "conversation": str(invitation.conversation_id),
        "conversation_title": invitation.conversation.title,
        "inviter": invitation.inviter.username,
        "invitee": invitation.invitee.username,
        "status": invitation.status,
        "created": invitation.created.isoformat(),
        # members mode: the inviter's signed addition, so the invitee can check who asked
        "statement": statement_json(invitation.statement) if invitation.statement else None,
    }


def epoch_json(epoch: KeyEpoch, conversation: Conversation) -> dict:
    keys = epoch.wrapped_keys.select_related("member").order_by("member__username")
    changes = epoch.changes.select_related("subject", "actor").order_by("pk")
    return {
        "conversation": str(conversation.id),
        "epoch": epoch.number,
        "previous_epoch": epoch.previous_epoch,
        "roster_epoch": epoch.roster_epoch,
        "reason": epoch.reason,
        "key_origin": epoch.key_origin,
        "signer": epoch.signer,
        "signer_serial": epoch.signer_serial,
        "signature": b64(epoch.signature),
        "changes": [statement_json(change) for change in changes],
        "members": [
            {
                "username": k.member.username,
                "serial": k.certificate_serial,
                "wrapped_key": b64(k.wrapped_key),
            }
            for k in keys
        ],
        "created": epoch.created.isoformat(),
    }


def message_json(message: Message, sender_username: str) -> dict:
    return {
        "conversation": str(message.conversation_id),
        "order": message.order,
        "epoch": message.epoch,
        "sender": sender_username,
        "sender_serial": message.sender_serial,
        "device": message.device,
        "sequence": message.sequence,
        "timestamp_ms": message.timestamp_ms,
        "client_id": str(message.client_id),
        "iv": b64(message.iv),
        "ciphertext": b64(message.ciphertext),
        "signature": b64(message.signature),
        "sent_at": message.created.isoformat(),
    }
