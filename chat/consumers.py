"""WebSocket endpoint /ws/chat/: parse a frame, call a service, reply. No rules here."""

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async as db
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import ValidationError
from redis.exceptions import RedisError

from chat import presence
from chat.errors import ChatError
from chat.events import conversation_group, user_group
from chat.handlers import HANDLERS
from chat.layer_watch import CONSUMERS
from chat.protocol import REQUEST_TYPES, request_adapter
from chat.ratelimit import TokenBucket, user_bucket
from chat.services.conversations import conversation_ids_of, presence_audience, users_by_id
from chat.services.session import (
    SESSION_ENDED,
    EndReason,
    initial_state,
    session_group,
    session_is_valid,
)
from securechat.jsonapi import ApiError

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_SESSION_ENDED = 4003  # logout, password change, deactivation, deletion: final
CLOSE_FLOODING = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4009  # WS_SOCKETS_PER_USER reached: retry after closing one


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if user is None or not user.is_authenticated or not session_key:
            # Accept then close so the client sees our code, not a bare handshake failure.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.session_key: str = session_key
        self.session_checked = 0.0  # time.monotonic() of the last valid re-check
        self.conversations: set[str] = set()
        self.backlog: dict[str, set[int]] = {}  # orders sent from the database at connect
        # per conversation, the newest epoch at which membership was read from the
        # database: a message of a later epoch is forwarded only after checking again
        self.member_at: dict[str, int] = {}
        self.bucket = TokenBucket(settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST)
        self.user_bucket = user_bucket(
            user.pk, settings.WS_USER_RATE_PER_SECOND, settings.WS_USER_RATE_BURST
        )
        self.strikes = 0
        self.closing = False
        # First the groups that can end this socket, then the session checked again: a
        # logout or password change between the handshake's authentication and these
        # subscriptions would have been announced to nobody.
        for group in self.own_groups():
            await self.channel_layer.group_add(group, self.channel_name)
        if not await self.session_alive(force=True):
            for group in self.own_groups():
                await self.unsubscribe(group)
            self.closing = True
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Presence and groups before the handshake completes, so that a client which
        # sees its socket open is already counted and already receives events.
        try:
            came_online = await presence.connection_opened(user.pk, self.channel_name)
        except presence.TooManyConnections:
            for group in self.own_groups():
                await self.unsubscribe(group)
            self.closing = True
            await self.accept()
            await self.send_json(
                {
                    "type": "error",
                    "id": None,
                    "code": "too_many_connections",
                    "message": f"At most {settings.WS_SOCKETS_PER_USER} open connections; "
                    "close a tab or another client.",
                }
            )
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.heartbeat_task = asyncio.create_task(self.keep_presence())
        for conversation_id in await db(conversation_ids_of)(user):
            await self.join_conversation(conversation_id)
        await self.accept()
        CONSUMERS.add(self)
        await self.send_backlog()
        if came_online:
            await self.announce_presence(online=True)

    def own_groups(self) -> list[str]:
        """This user's group (every tab: events, and the end of all their sessions) and
        this login session's group (its logout)."""
        return [user_group(self.user.pk), session_group(self.session_key)]

    async def send_backlog(self) -> None:
        """Presence, pending invitations and key requests, and every message stored while
        this socket was away (or while live delivery was down), from the database."""
        for event in await self.initial_events():
            if event["type"] == "message.new":
                message = event["message"]
                self.backlog.setdefault(message["conversation"], set()).add(message["order"])
            await self.send_json({**event, "id": None})

    async def resync(self, reason: str) -> None:
        """Live events may have been lost (an outage of the channel layer): subscribe
        again to what this user is in now, say `resync`, send the backlog. The client
        then fetches history `since` its last order (protocol.md §7)."""
        if not await self.session_alive(force=True):  # its end may be what was lost
            await self.end_session(EndReason.INVALID)
            return
        current = set(await db(conversation_ids_of)(self.user))
        for conversation_id in self.conversations - current:
            await self.leave_conversation(conversation_id)
        for group in self.own_groups():
            await self.subscribe(group)
        for conversation_id in current:
            await self.join_conversation(conversation_id)
        await self.send_json({"type": "resync", "id": None, "reason": reason})
        await self.send_backlog()

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "heartbeat_task"):
            return
        self.closing = True
        CONSUMERS.discard(self)
        self.heartbeat_task.cancel()
        for group in self.own_groups():
            await self.unsubscribe(group)
        for conversation_id in list(self.conversations):
            await self.leave_conversation(conversation_id)
        try:
            if await presence.connection_closed(self.user.pk, self.channel_name):
                await self.announce_presence(online=False)
        except Exception as exc:  # Redis down: the presence entry expires by itself
            logger.warning("presence not updated at disconnect (%s)", type(exc).__name__)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "user") or self.closing:
            return  # unauthenticated, or frames queued behind a close: nobody hears of them
        request_id = None
        try:
            frame = self.parse(text_data, bytes_data)
            request_id = frame.get("id") if isinstance(frame.get("id"), str) else None
            self.throttle()
            if not await self.session_alive():
                raise ChatError("session_ended", "Your session has ended; log in again.")
            request = self.validate(frame)
            reply = await HANDLERS[request.type](self, request)
            if reply is not None:
                await self.send_json({**reply, "id": request.id})
        except ApiError as exc:  # ChatError, or a PkiError from a certificate check
            await self.send_json(
                {"type": "error", "id": request_id, "code": exc.code, "message": exc.message}
            )
            if exc.code == "rate_limited" and self.strikes >= settings.WS_RATE_STRIKES:
                self.closing = True
                await self.close(code=CLOSE_FLOODING)
            elif exc.code == "session_ended":
                await self.end_session(EndReason.INVALID)
        except (RedisError, OSError) as exc:
            # Redis (presence, the channel layer) is down: retryable, one line, no trace.
            logger.warning("frame refused, Redis unavailable (%s)", type(exc).__name__)
            await self.send_json(
                {
                    "type": "error",
                    "id": request_id,
                    "code": "unavailable",
                    "message": "Live delivery is down for a moment; try again.",
                }
            )
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

    async def session_alive(self, *, force: bool = False) -> bool:
        """Is the login session behind this socket still valid (not logged out, password
        unchanged, user active)? Read from the database at most once per
        WS_SESSION_CHECK_SECONDS per socket: the `session.ended` event closes a socket at
        once; this bounds what a lost event could leave open."""
        started = time.monotonic()
        if not force and started - self.session_checked < settings.WS_SESSION_CHECK_SECONDS:
            return True
        if not await db(session_is_valid)(self.session_key, self.user.pk):
            return False
        self.session_checked = started
        return True

    async def end_session(self, reason: str) -> None:
        """Close with 4003, final: the client must log in again, not reconnect. Frames
        already queued behind this are dropped unprocessed."""
        if self.closing:
            return
        self.closing = True
        logger.info("socket of user %s closed: session ended (%s)", self.user.pk, reason)
        await self.close(code=CLOSE_SESSION_ENDED)

    def throttle(self) -> None:
        if not self.bucket.allow() or not self.user_bucket.allow():
            self.strikes += 1
            raise ChatError("rate_limited", "Too many frames; slow down.")

    def parse(self, text_data: str | None, bytes_data: bytes | None) -> dict:
        raw = text_data if text_data is not None else (bytes_data or b"")
        if len(raw) > settings.WS_MAX_FRAME_BYTES:
            self.throttle()  # an oversized flood still counts against the bucket
            raise ChatError(
                "frame_too_large", f"Frames are limited to {settings.WS_MAX_FRAME_BYTES} bytes."
            )
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: thousands of nested brackets; refused like any bad JSON.
            self.throttle()
            raise ChatError("invalid_json", "The frame is not valid JSON.") from None
        if not isinstance(frame, dict):
            self.throttle()
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

    async def subscribe(self, group: str) -> None:
        # Best effort: with the channel layer down this fails, and the resync after
        # recovery subscribes again; the request that got here has already committed.
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            logger.warning("group subscription deferred (%s)", type(exc).__name__)

    async def unsubscribe(self, group: str) -> None:
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:
            logger.warning("group unsubscription failed (%s)", type(exc).__name__)

    async def join_conversation(self, conversation_id: str) -> None:
        self.conversations.add(conversation_id)
        await self.subscribe(conversation_group(conversation_id))

    async def leave_conversation(self, conversation_id: str) -> None:
        self.conversations.discard(conversation_id)
        self.member_at.pop(conversation_id, None)
        await self.unsubscribe(conversation_group(conversation_id))

    async def still_member(self, conversation_id: str, epoch: int) -> bool:
        """Forwarding does not trust the channel layer to have told us of a removal: a
        message of an epoch newer than the one membership was checked at is forwarded
        only if the database still lists this user (every membership change starts an
        epoch, so one look-up per epoch suffices)."""
        if self.member_at.get(conversation_id, 0) >= epoch:
            return True
        if conversation_id in await db(conversation_ids_of)(self.user):
            self.member_at[conversation_id] = epoch
            return True
        await self.leave_conversation(conversation_id)
        return False

    async def chat_event(self, message: dict) -> None:
        """An event from the channel layer: keep group membership in step, then forward."""
        if getattr(self, "closing", False):
            return
        if message["event"]["type"] == SESSION_ENDED:
            await self.end_session(message["event"]["reason"])
            return
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
            if not await self.still_member(conversation, message["epoch"]):
                return
        elif kind == "typing" and event["username"] == self.user.username:
            return
        await self.send_json({**event, "id": None})
        if kind in ("member.left", "member.removed") and event["username"] == self.user.username:
            await self.leave_conversation(event["conversation"])

    async def initial_events(self) -> list[dict]:
        names, events = await db(initial_state)(self.user)
        # just after an outage the snapshot says offline rather than failing the backlog
        online = await presence.online_among_or(sorted(names), unknown=set())
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
                # an idle socket too ends with its session, event or not
                if not await self.session_alive():
                    await self.end_session(EndReason.INVALID)
                    return
            except Exception as exc:  # the database busy: the next beat checks again
                logger.warning("session re-check failed (%s)", type(exc).__name__)
            try:
                await presence.heartbeat(self.user.pk, self.channel_name)
                for user in await db(users_by_id)(await presence.claim_expired_users()):
                    await self.announce_presence(online=False, user=user)
            except Exception as exc:  # a Redis hiccup must not end presence for this socket
                logger.warning(
                    "presence heartbeat failed for user %s (%s)", self.user.pk, type(exc).__name__
                )
