"""A socket's session: what it receives when it connects (pending invitations, key
requests it can answer, messages stored while it was away; presence is added by the
consumer), whether the login session behind it is still valid, and the events that end
it (logout, password change, deactivation, deletion: docs/protocol.md §4, close 4003)."""

import hashlib
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.db import transaction
from django.utils.crypto import constant_time_compare

from accounts.models import User
from chat import outbox
from chat.events import user_group
from chat.models import Conversation, OutboxEvent
from chat.serializers import invitation_json
from chat.services.conversations import pending_invitations, presence_audience
from chat.services.epochs import claim_key_request
from chat.services.messages import undelivered


def initial_state(user: User) -> tuple[dict[int, str], list[dict]]:
    """(who may see each other's presence: id -> username, the events to send now)."""
    audience = presence_audience(user)
    names = dict(User.objects.filter(pk__in=audience).values_list("pk", "username"))
    events = [
        {"type": "invite.received", "invitation": invitation_json(i)}
        for i in pending_invitations(user)
    ]
    awaiting_keys = Conversation.objects.filter(
        memberships__user=user, memberships__left__isnull=True, pending_epoch__isnull=False
    ).values_list("pk", flat=True)
    requests = [claim_key_request(pk, user) for pk in awaiting_keys]
    events += [request for request in requests if request is not None]
    events += [{"type": "message.new", "message": m} for m in undelivered(user)]
    return names, events


SESSION_ENDED = "session.ended"


class EndReason:
    """Why a session's sockets were closed; logged by the worker, not sent to the client."""

    LOGGED_OUT = "logged_out"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password
    DEACTIVATED = "deactivated"
    DELETED = "deleted"
    INVALID = "session_invalid"  # found by a re-check: expired, deleted, or an event lost


def session_group(session_key: str) -> str:
    """The group of one login session's sockets. Named by a hash: group names are stored
    in the outbox table and travel through Redis, and the key itself is a credential."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()


def _publish(groups: list[str], reason: str) -> None:
    # The outbox path of chat/events.py: written in the caller's transaction, sent after
    # its commit, retried through a Redis outage, so a lost publish cannot keep a socket.
    OutboxEvent.objects.create(groups=groups, event={"type": SESSION_ENDED, "reason": reason})
    transaction.on_commit(outbox.wake)


def end_session_sockets(session_key: str, reason: str) -> None:
    """Close, on every worker, the sockets opened with this login session."""
    _publish([session_group(session_key)], reason)


def end_user_sockets(user_id: int, reason: str) -> None:
    """Close, on every worker, every socket of this user, whatever its session."""
    _publish([user_group(user_id)], reason)


def session_is_valid(session_key: str | None, user_id: int) -> bool:
    """What Django's `get_user` checks on each HTTP request, read-only: the session
    exists and has not expired, names this user through a configured backend that still
    returns them (ModelBackend: active), and carries the hash of their current password
    (or one made under a SECRET_KEY_FALLBACKS key). Two indexed reads."""
    if not session_key:
        return False
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    backend_path = data.get(BACKEND_SESSION_KEY)
    if data.get(SESSION_KEY) != str(user_id):
        return False
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not user.is_active:
        return False
    stored = data.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return bool(stored) and any(constant_time_compare(stored, h) for h in hashes)
