"""One small async function per request type: translate the frame, call a service off the
event loop, shape the reply. The rules live in chat.services."""

import uuid
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async as db

from chat import presence, protocol
from chat.errors import ChatError
from chat.events import conversation_group
from chat.serializers import conversation_json, invitation_json
from chat.services import conversations, epochs, messages

USERS_PAGE = 20


async def ping(consumer, request: protocol.Ping) -> dict:
    return {"type": "pong"}


async def users_search(consumer, request: protocol.UsersSearch) -> dict:
    candidates = await db(conversations.search_users)(consumer.user, request.query)
    online = await presence.online_among([u.pk for u in candidates])
    if request.online_only:
        candidates = [u for u in candidates if u.pk in online]
    start = (request.page - 1) * USERS_PAGE
    page = candidates[start : start + USERS_PAGE]
    return {
        "type": "users.list",
        "users": [
            {"username": u.username, "display_name": u.shown_name, "online": u.pk in online}
            for u in page
        ],
        "page": request.page,
        "has_more": len(candidates) > start + USERS_PAGE,
    }


def _create(user, request: protocol.ConversationCreate) -> dict:
    conversation = conversations.create_conversation(
        user, request.usernames, title=request.title, key_origin=request.key_origin
    )
    return conversation_json(conversation)


async def conversation_create(consumer, request: protocol.ConversationCreate) -> dict:
    created = await db(_create)(consumer.user, request)
    await consumer.join_conversation(created["id"])
    return {"type": "conversation.created", "conversation": created["id"], "details": created}


async def conversation_list(consumer, request: protocol.ConversationList) -> dict:
    listed, has_more = await db(conversations.list_conversations)(consumer.user, request.page)
    return {
        "type": "conversation.list",
        "conversations": listed,
        "page": request.page,
        "has_more": has_more,
    }


async def conversation_history(consumer, request: protocol.ConversationHistory) -> dict:
    if request.since is not None and request.before is not None:
        raise ChatError("invalid_frame", "Give `since` or `before`, not both.")
    page, has_more = await db(messages.history)(
        request.conversation,
        consumer.user,
        since=request.since,
        before=request.before,
        limit=request.limit,
    )
    return {
        "type": "conversation.history",
        "conversation": request.conversation,
        "messages": page,
        "has_more": has_more,
    }


def _statement(frame: protocol.StatementFrame | None):
    return frame.to_statement() if frame is not None else None


async def conversation_leave(consumer, request: protocol.ConversationLeave) -> dict:
    await db(conversations.leave_conversation)(
        request.conversation, consumer.user, _statement(request.statement)
    )
    await consumer.leave_conversation(request.conversation)
    return {"type": "conversation.left", "conversation": request.conversation}


async def conversation_accept(consumer, request: protocol.ConversationAccept) -> dict:
    await db(conversations.accept_request)(request.conversation, consumer.user)
    return {"type": "conversation.accepted", "conversation": request.conversation}


async def user_block(consumer, request: protocol.UserBlock) -> dict:
    if request.type == "user.block":
        await db(conversations.block_user)(consumer.user, request.username)
        return {"type": "user.blocked", "username": request.username}
    await db(conversations.unblock_user)(consumer.user, request.username)
    return {"type": "user.unblocked", "username": request.username}


async def member_remove(consumer, request: protocol.MemberRemove) -> dict:
    await db(conversations.remove_member)(
        request.conversation, consumer.user, request.username, _statement(request.statement)
    )
    return {
        "type": "member.removed",
        "conversation": request.conversation,
        "username": request.username,
    }


async def invite_send(consumer, request: protocol.InviteSend) -> dict:
    invitation = await db(conversations.invite)(
        request.conversation, consumer.user, request.username, _statement(request.statement)
    )
    return {"type": "invite.sent", "invitation": await db(invitation_json)(invitation)}


def _accept(invitation_id: int, user) -> dict:
    return conversation_json(conversations.accept_invitation(invitation_id, user))


async def invite_answer(consumer, request: protocol.InviteAnswer) -> dict:
    if request.type == "invite.accept":
        conversation = await db(_accept)(request.invitation, consumer.user)
        await consumer.join_conversation(conversation["id"])
        return {
            "type": "invite.accepted",
            "conversation": conversation["id"],
            "details": conversation,
        }
    service = (
        conversations.decline_invitation
        if request.type == "invite.decline"
        else conversations.cancel_invitation
    )
    invitation = await db(service)(request.invitation, consumer.user)
    reply = "invite.declined" if request.type == "invite.decline" else "invite.cancelled"
    return {"type": reply, "invitation": await db(invitation_json)(invitation)}


async def epoch_get(consumer, request: protocol.EpochGet) -> dict:
    found = await db(epochs.readable_epoch_records)(
        request.conversation, consumer.user, request.epochs
    )
    return {"type": "epoch.list", "conversation": request.conversation, "epochs": found}


async def epoch_report(consumer, request: protocol.EpochReport) -> dict:
    pending = await db(epochs.report_unreadable_epoch)(
        request.conversation, consumer.user, request.epoch
    )
    return {
        "type": "epoch.reported",
        "conversation": request.conversation,
        "epoch": request.epoch,
        "pending_epoch": pending,
    }


async def epoch_submit(consumer, request: protocol.EpochSubmit) -> dict:
    number = await db(epochs.submit_member_epoch)(
        request.conversation,
        consumer.user,
        number=request.epoch,
        signer_serial=request.signer_serial,
        signature=request.signature,
        members=[(m.username, m.serial, m.wrapped_key) for m in request.members],
    )
    return {"type": "epoch.accepted", "conversation": request.conversation, "epoch": number}


async def message_send(consumer, request: protocol.MessageSend) -> dict:
    outgoing = messages.OutgoingMessage(
        conversation_id=request.conversation,
        client_id=uuid.UUID(request.client_id),
        epoch=request.epoch,
        sequence=request.sequence,
        timestamp_ms=request.timestamp_ms,
        sender_serial=request.sender_serial,
        device=request.device,
        iv=request.iv,
        ciphertext=request.ciphertext,
        signature=request.signature,
    )
    accepted = await db(messages.accept_message)(consumer.user, outgoing)
    others = [pk for pk in accepted.members if pk != consumer.user.pk]
    # the ack depends only on the commit: without Redis, claim nobody is offline
    online = await presence.online_among_or(others, unknown=set(others))
    return {
        "type": "message.ack",
        "conversation": accepted.conversation_id,
        "client_id": accepted.client_id,
        "order": accepted.order,
        # "recipient offline — will be delivered when online"
        "offline": sorted(accepted.members[pk] for pk in others if pk not in online),
    }


async def delivery_ack(consumer, request: protocol.DeliveryAck) -> dict:
    up_to = await db(messages.acknowledge_delivery)(
        request.conversation, consumer.user, request.up_to
    )
    return {"type": "delivery.acked", "conversation": request.conversation, "up_to": up_to}


async def typing(consumer, request: protocol.Typing) -> dict:
    if request.conversation not in consumer.conversations:
        raise ChatError("not_member", "You are not a member of this conversation.")
    event = {
        "type": "typing",
        "conversation": request.conversation,
        "username": consumer.user.username,
    }
    await consumer.channel_layer.group_send(
        conversation_group(request.conversation), {"type": "chat.event", "event": event}
    )
    return {"type": "typing.sent"}


Handler = Callable[..., Awaitable[dict | None]]
HANDLERS: dict[str, Handler] = {
    "ping": ping,
    "users.search": users_search,
    "conversation.create": conversation_create,
    "conversation.list": conversation_list,
    "conversation.history": conversation_history,
    "conversation.leave": conversation_leave,
    "conversation.accept": conversation_accept,
    "user.block": user_block,
    "user.unblock": user_block,
    "member.remove": member_remove,
    "invite.send": invite_send,
    "invite.accept": invite_answer,
    "invite.decline": invite_answer,
    "invite.cancel": invite_answer,
    "epoch.get": epoch_get,
    "epoch.report": epoch_report,
    "epoch.submit": epoch_submit,
    "message.send": message_send,
    "delivery.ack": delivery_ack,
    "typing": typing,
}
