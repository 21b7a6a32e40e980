"""WebSocket endpoint /ws/chat/: parse a frame, call a service, reply. No rules here."""

import asyncio
import json
import logging

from channels.db import database_sync_to_async as db
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import ValidationError

from chat import presence
from chat.errors import ChatError
from chat.events import conversation_group, user_group
from chat.handlers import HANDLERS
from chat.protocol import REQUEST_TYPES, request_adapter
from chat.ratelimit import TokenBucket
from chat.services.conversations import conversation_ids_of, presence_audience, users_by_id
from chat.services.session import initial_state
from securechat.jsonapi import ApiError

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_FLOODING = 4008


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept then close so the client sees our code, not a bare handshake failure.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.conversations: set[str] = set()
        self.backlog: dict[str, set[int]] = {}  # orders sent from the database at connect
        self.bucket = TokenBucket(settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST)
        self.strikes = 0
        # Presence and groups before the handshake completes, so that a client which
        # sees its socket open is already counted and already receives events.
        came_online = await presence.connection_opened(user.pk, self.channel_name)
        self.heartbeat_task = asyncio.create_task(self.keep_presence())
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        for conversation_id in await db(conversation_ids_of)(user):
            await self.join_conversation(conversation_id)
        await self.accept()
        for event in await self.initial_events():
            if event["type"] == "message.new":
                message = event["message"]
                self.backlog.setdefault(message["conversation"], set()).add(message["order"])
            await self.send_json({**event, "id": None})
        if came_online:
            await self.announce_presence(online=True)

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "heartbeat_task"):
            return
        self.heartbeat_task.cancel()
        await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        for conversation_id in list(self.conversations):
            await self.leave_conversation(conversation_id)
        if await presence.connection_closed(self.user.pk, self.channel_name):
            await self.announce_presence(online=False)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "user"):
            return  # an unauthenticated socket being closed
        request_id = None
        try:
            frame = self.parse(text_data, bytes_data)
            request_id = frame.get("id") if isinstance(frame.get("id"), str) else None
            request = self.validate(frame)
            reply = await HANDLERS[request.type](self, request)
            if reply is not None:
                await self.send_json({**reply, "id": request.id})
        except ApiError as exc:  # ChatError, or a PkiError from a certificate check
            await self.send_json(
                {"type": "error", "id": request_id, "code": exc.code, "message": exc.message}
            )
            if exc.code == "rate_limited" and self.strikes >= settings.WS_RATE_STRIKES:
                await self.close(code=CLOSE_FLOODING)
        except Exception:
            # The frame's content is never logged: it may be ciphertext or private data.
            logger.exception("chat frame failed for user %s", self.user.pk)
            await self.send_json(
                {
                    "type": "error",
                    "id": request_id,
                    "code": "internal_error",
                    "message": "The server failed on this request.",
                }
            )

    def parse(self, text_data: str | None, bytes_data: bytes | None) -> dict:
        if not self.bucket.allow():
            self.strikes += 1
            raise ChatError("rate_limited", "Too many frames; slow down.")
        raw = text_data if text_data is not None else (bytes_data or b"")
        if len(raw) > settings.WS_MAX_FRAME_BYTES:
            raise ChatError(
                "frame_too_large", f"Frames are limited to {settings.WS_MAX_FRAME_BYTES} bytes."
            )
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ChatError("invalid_json", "The frame is not valid JSON.") from None
        if not isinstance(frame, dict):
            raise ChatError("invalid_json", "A frame must be a JSON object.")
        return frame

    def validate(self, frame: dict):
        if frame.get("type") not in REQUEST_TYPES:
            raise ChatError("unknown_type", "Unknown or missing frame type.")
        try:
            return request_adapter.validate_python(frame)
        except ValidationError as exc:
            # Field names only: the values may be secrets.
            fields = sorted({".".join(map(str, e["loc"][1:])) or "frame" for e in exc.errors()})
            raise ChatError("invalid_frame", f"Invalid field(s): {', '.join(fields)}.") from None

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def join_conversation(self, conversation_id: str) -> None:
        self.conversations.add(conversation_id)
        await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)

    async def leave_conversation(self, conversation_id: str) -> None:
        self.conversations.discard(conversation_id)
        await self.channel_layer.group_discard(
            conversation_group(conversation_id), self.channel_name
        )

    async def chat_event(self, message: dict) -> None:
        """An event from the channel layer: keep group membership in step, then forward."""
        await self.forward(message["event"])

    async def forward(self, event: dict) -> None:
        kind = event["type"]
        if kind == "conversation.created":
            await self.join_conversation(event["conversation"])
        elif kind == "message.new":
            message = event["message"]
            conversation = message["conversation"]
            # Drop anything for a conversation this socket has left, and what it already
            # sent from the database at connect (backlog and live events may overlap).
            if conversation not in self.conversations:
                return
            if message["order"] in self.backlog.get(conversation, ()):
                return
        elif kind == "typing" and event["username"] == self.user.username:
            return
        await self.send_json({**event, "id": None})
        if kind in ("member.left", "member.removed") and event["username"] == self.user.username:
            await self.leave_conversation(event["conversation"])

    async def initial_events(self) -> list[dict]:
        names, events = await db(initial_state)(self.user)
        online = await presence.online_among(sorted(names))
        users = [{"username": names[pk], "online": pk in online} for pk in sorted(names)]
        return [{"type": "presence.snapshot", "users": users}, *events]

    async def announce_presence(self, *, online: bool, user=None) -> None:
        user = user or self.user
        event = {"type": "presence.changed", "username": user.username, "online": online}
        for user_id in await db(presence_audience)(user):
            await self.channel_layer.group_send(
                user_group(user_id), {"type": "chat.event", "event": event}
            )

    async def keep_presence(self) -> None:
        """Refresh this connection, and announce users whose worker died."""
        while True:
            await asyncio.sleep(settings.PRESENCE_HEARTBEAT_SECONDS)
            try:
                await presence.heartbeat(self.user.pk, self.channel_name)
                for user in await db(users_by_id)(await presence.claim_expired_users()):
                    await self.announce_presence(online=False, user=user)
            except Exception:  # a Redis hiccup must not end presence for this socket
                logger.exception("presence heartbeat failed for user %s", self.user.pk)
