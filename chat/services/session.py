"""What a socket receives when it connects: pending invitations, key requests it can
answer, and messages stored while it was away (presence is added by the consumer)."""

from accounts.models import User
from chat.models import Conversation
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
