"""What a socket receives when it connects: pending invitations, key requests it can
answer, and messages stored while it was away (presence is added by the consumer)."""

from accounts.models import User
from chat.models import Conversation
from chat.serializers import invitation_json
from chat.services.conversations import pending_invitations, presence_audience
from chat.services.epochs import epoch_request_json
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
    )
    events += [epoch_request_json(c, c.pending_reason) for c in awaiting_keys]
    events += [{"type": "message.new", "message": m} for m in undelivered(user)]
    return names, events
