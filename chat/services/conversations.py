"""Conversations, membership and invitations. Every membership change starts an epoch in
the same transaction, and events leave only after it commits."""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from accounts.models import User
from accounts.services import mutual_contacts
from chat.errors import ChatError
from chat.events import publish_to_users
from chat.models import Conversation, Invitation, KeyEpoch, Membership, MembershipChange
from chat.serializers import conversation_json, invitation_json
from chat.services.epochs import current_member_ids, start_epoch
from chat.services.statements import require_statement
from cryptokit.membership import Statement
from keys.services import active_encryption_certificates, current_certificates

MAX_INITIAL_MEMBERS = 50


def membership_of(conversation_id: str, user: User, *, lock: bool = False) -> Membership:
    """The user's open membership, or `not_member` (also for unknown conversations, so
    outsiders learn nothing about which conversations exist). With lock, the
    conversation row is locked for the rest of the transaction."""
    conversations = Conversation.objects.select_for_update() if lock else Conversation.objects
    conversation = conversations.filter(pk=conversation_id).first()
    membership = (
        conversation
        and Membership.objects.filter(
            conversation=conversation, user=user, left__isnull=True
        ).first()
    )
    if not membership:
        raise ChatError("not_member", "You are not a member of this conversation.")
    membership.conversation = conversation
    return membership


def _users_by_name(usernames: list[str]) -> list[User]:
    found = {u.username: u for u in User.objects.filter(username__in=usernames, is_active=True)}
    missing = [name for name in usernames if name not in found]
    if missing:
        raise ChatError("unknown_user", f"No such user: {', '.join(sorted(missing))}.")
    return [found[name] for name in dict.fromkeys(usernames)]


def _created_event(conversation: Conversation) -> dict:
    # `conversation` is always an id in the protocol; the object travels as `details`.
    details = conversation_json(conversation)
    return {"type": "conversation.created", "conversation": details["id"], "details": details}


def _announce_conversation(conversation: Conversation) -> None:
    publish_to_users(
        current_member_ids(conversation),
        _created_event(conversation),
    )


@transaction.atomic
def create_conversation(
    creator: User, usernames: list[str], *, title: str = "", key_origin: str = "server"
) -> Conversation:
    """A conversation of the creator (owner) and the named users, with its first epoch."""
    others = [u for u in _users_by_name(usernames) if u.pk != creator.pk]
    if not others:
        raise ChatError("unknown_user", "Name at least one other user.")
    if len(others) > MAX_INITIAL_MEMBERS:
        raise ChatError("invalid_frame", f"At most {MAX_INITIAL_MEMBERS} users at once.")
    _refuse_if_blocked(creator, others)
    _check_creation_rate(creator)
    _check_membership_room([creator, *others])
    if key_origin == Conversation.KeyOrigin.MEMBERS:
        _require_keys([creator, *others])
    conversation = Conversation.objects.create(
        title=title, key_origin=key_origin, created_by=creator
    )
    Membership.objects.create(conversation=conversation, user=creator, role=Membership.Role.OWNER)
    mutual = set(mutual_contacts(creator).values_list("pk", flat=True))
    Membership.objects.bulk_create(
        # someone who is not a mutual contact gets a message request to accept
        Membership(conversation=conversation, user=u, accepted=u.pk in mutual)
        for u in others
    )
    _announce_conversation(conversation)
    start_epoch(conversation, KeyEpoch.Reason.CREATED, trigger=creator)
    return conversation


def _refuse_if_blocked(actor: User, others: list[User]) -> None:
    blocking = sorted(
        u.username for u in User.objects.filter(pk__in=[u.pk for u in others], blocked=actor)
    )
    if blocking:
        raise ChatError("blocked", f"Not accepting conversations from you: {', '.join(blocking)}.")


@transaction.atomic
def accept_request(conversation_id: str, user: User) -> Conversation:
    """The member accepts a message request: from now on it is a conversation like any."""
    membership = membership_of(conversation_id, user, lock=True)
    if not membership.accepted:
        membership.accepted = True
        membership.save(update_fields=["accepted"])
    return membership.conversation


@transaction.atomic
def block_user(user: User, username: str) -> None:
    """Refuse conversations and invitations from `username` from now on (what is already
    shared stays: leave it to end it)."""
    other = User.objects.filter(username=username, is_active=True).exclude(pk=user.pk).first()
    if other is None:
        raise ChatError("unknown_user", f"No such user: {username}.")
    user.blocked.add(other)


def unblock_user(user: User, username: str) -> None:
    user.blocked.remove(*User.objects.filter(username=username))


def _check_creation_rate(creator: User) -> None:
    """At most CONVERSATIONS_PER_HOUR new conversations per creator. The creator's row is
    locked first, so parallel creations are counted one after another, not all at once."""
    User.objects.select_for_update().filter(pk=creator.pk).first()
    since = timezone.now() - dt.timedelta(hours=1)
    made = Conversation.objects.filter(created_by=creator, created__gte=since).count()
    if made >= settings.CONVERSATIONS_PER_HOUR:
        raise ChatError(
            "too_many_conversations",
            f"At most {settings.CONVERSATIONS_PER_HOUR} new conversations an hour; try later.",
        )


def _check_membership_room(users: list[User]) -> None:
    """Nobody is put in more than MEMBERSHIPS_PER_USER conversations (what a flood of
    conversations forced on a victim would otherwise do to their every list and connect)."""
    counts = dict(
        Membership.objects.filter(user__in=users, left__isnull=True)
        .values("user")
        .annotate(n=Count("pk"))
        .values_list("user", "n")
    )
    full = sorted(u.username for u in users if counts.get(u.pk, 0) >= settings.MEMBERSHIPS_PER_USER)
    if full:
        raise ChatError(
            "membership_limit",
            f"In {settings.MEMBERSHIPS_PER_USER} conversations already: {', '.join(full)}.",
        )


def _require_keys(users: list[User]) -> None:
    """Members mode wraps every key on a client: everyone needs a certified key."""
    certified = active_encryption_certificates([u.pk for u in users])
    keyless = sorted(u.username for u in users if u.pk not in certified)
    if keyless:
        raise ChatError("no_active_keys", f"No certified keys yet: {', '.join(keyless)}.")


def _void(change_id: int | None) -> None:
    if change_id is not None:
        MembershipChange.objects.filter(pk=change_id).update(state=MembershipChange.State.VOID)


@transaction.atomic
def invite(
    conversation_id: str, inviter: User, username: str, statement: Statement | None = None
) -> Invitation:
    """Invite a user; in members mode `statement` is the inviter's signed addition (an
    invitation pending already gets the new statement: that is how a stale one is renewed)."""
    membership = membership_of(conversation_id, inviter, lock=True)
    invitee = User.objects.filter(username=username, is_active=True).first()
    if invitee is None:
        raise ChatError("unknown_user", f"No such user: {username}.")
    _refuse_if_blocked(inviter, [invitee])
    conversation = membership.conversation
    if Membership.objects.filter(
        conversation=conversation, user=invitee, left__isnull=True
    ).exists():
        raise ChatError("already_member", f"{username} is already a member.")
    change = require_statement(
        conversation, statement, action=MembershipChange.Action.ADD, subject=invitee, actor=inviter
    )
    invitation = Invitation.objects.filter(
        conversation=conversation, invitee=invitee, status=Invitation.Status.PENDING
    ).first() or Invitation(conversation=conversation, inviter=inviter, invitee=invitee)
    if change is not None:
        change.state = MembershipChange.State.PROPOSED
        change.save()
        _void(invitation.statement_id)
        invitation.statement, invitation.inviter = change, inviter
    invitation.save()
    publish_to_users(
        [invitee.pk], {"type": "invite.received", "invitation": invitation_json(invitation)}
    )
    return invitation


def _pending_invitation_for(invitation_id: int, invitee: User) -> Invitation:
    invitation = (
        # of=self: PostgreSQL cannot lock the nullable side of the statement join
        Invitation.objects.select_for_update(of=("self",))
        .select_related("conversation", "inviter", "invitee", "statement")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.invitee_id != invitee.pk:
        # Someone else's invitation looks exactly like a missing one.
        raise ChatError("not_found", "No such invitation for you.")
    if invitation.status != Invitation.Status.PENDING:
        raise ChatError("invitation_closed", f"This invitation is already {invitation.status}.")
    return invitation


def _close_invitation(invitation: Invitation, status: str) -> None:
    if status != Invitation.Status.ACCEPTED:
        _void(invitation.statement_id)
    invitation.status = status
    invitation.answered = timezone.now()
    invitation.save(update_fields=["status", "answered"])
    publish_to_users(
        [invitation.inviter_id],
        {"type": "invite.answered", "invitation": invitation_json(invitation)},
    )


@transaction.atomic
def accept_invitation(invitation_id: int, invitee: User) -> Conversation:
    invitation = _pending_invitation_for(invitation_id, invitee)
    conversation = Conversation.objects.select_for_update().get(pk=invitation.conversation_id)
    _check_membership_room([invitee])
    if conversation.key_origin == Conversation.KeyOrigin.MEMBERS:
        _make_addition_pending(conversation, invitation)
    _close_invitation(invitation, Invitation.Status.ACCEPTED)
    Membership.objects.create(conversation=conversation, user=invitee)
    publish_to_users(
        current_member_ids(conversation),
        {
            "type": "member.joined",
            "conversation": str(conversation.id),
            "username": invitee.username,
        },
    )
    publish_to_users(
        [invitee.pk],
        _created_event(conversation),
    )
    start_epoch(conversation, KeyEpoch.Reason.JOINED, trigger=invitation.inviter)
    return conversation


def _make_addition_pending(conversation: Conversation, invitation: Invitation) -> None:
    """The inviter's signed addition must still fit: made against the current member
    list, for the keys the invitee has now. Otherwise the inviter invites again."""
    change = invitation.statement
    inviter = invitation.inviter.username
    if change is None or change.roster_epoch != conversation.roster_epoch:
        raise ChatError(
            "invitation_stale", f"The member list changed since; ask {inviter} to invite again."
        )
    if not Membership.objects.filter(
        conversation=conversation, user_id=invitation.inviter_id, left__isnull=True
    ).exists():
        raise ChatError("invitation_stale", f"{inviter} is no longer a member.")
    certificates = current_certificates(invitation.invitee)
    if set(certificates) != {"signing", "encryption"} or (
        bytes(change.subject_signing_sha256).hex(),
        bytes(change.subject_encryption_sha256).hex(),
    ) != (certificates["signing"].spki_sha256, certificates["encryption"].spki_sha256):
        raise ChatError(
            "keys_changed", f"Your keys changed since; ask {inviter} to invite you again."
        )
    change.state = MembershipChange.State.PENDING
    change.save(update_fields=["state"])


@transaction.atomic
def decline_invitation(invitation_id: int, invitee: User) -> Invitation:
    invitation = _pending_invitation_for(invitation_id, invitee)
    _close_invitation(invitation, Invitation.Status.DECLINED)
    return invitation


@transaction.atomic
def cancel_invitation(invitation_id: int, user: User) -> Invitation:
    invitation = Invitation.objects.select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise ChatError("not_found", "No such invitation.")
    is_owner = Membership.objects.filter(
        conversation_id=invitation.conversation_id,
        user=user,
        left__isnull=True,
        role=Membership.Role.OWNER,
    ).exists()
    if invitation.inviter_id != user.pk and not is_owner:
        raise ChatError("not_found", "No such invitation.")
    if invitation.status != Invitation.Status.PENDING:
        raise ChatError("invitation_closed", f"This invitation is already {invitation.status}.")
    _void(invitation.statement_id)
    invitation.status = Invitation.Status.CANCELLED
    invitation.answered = timezone.now()
    invitation.save(update_fields=["status", "answered"])
    publish_to_users(
        [invitation.invitee_id],
        {"type": "invite.cancelled", "invitation": invitation_json(invitation)},
    )
    return invitation


def _end_membership(
    membership: Membership, *, event: str, removed: bool, reason: str, trigger: User | None
) -> None:
    conversation = membership.conversation
    audience = current_member_ids(conversation)
    membership.left = timezone.now()
    membership.removed = removed
    membership.save(update_fields=["left", "removed"])
    publish_to_users(
        audience,
        {"type": event, "conversation": str(conversation.id), "username": membership.user.username},
    )
    if Membership.objects.filter(conversation=conversation, left__isnull=True).exists():
        start_epoch(conversation, reason, trigger=trigger)


def _record_departure(membership: Membership, statement, *, action: str, actor: User) -> None:
    change = require_statement(
        membership.conversation, statement, action=action, subject=membership.user, actor=actor
    )
    if change is not None:
        change.state = MembershipChange.State.PENDING
        change.save()


@transaction.atomic
def leave_conversation(
    conversation_id: str, user: User, statement: Statement | None = None
) -> None:
    """Leave; in members mode `statement` is the leaver's own signed leave."""
    membership = membership_of(conversation_id, user, lock=True)
    membership.user = user
    _record_departure(membership, statement, action=MembershipChange.Action.LEAVE, actor=user)
    _end_membership(
        membership, event="member.left", removed=False, reason=KeyEpoch.Reason.LEFT, trigger=None
    )


@transaction.atomic
def remove_member(
    conversation_id: str, owner: User, username: str, statement: Statement | None = None
) -> None:
    """Remove a member (owner only); in members mode `statement` is the owner's signed removal."""
    own = membership_of(conversation_id, owner, lock=True)
    if own.role != Membership.Role.OWNER:
        raise ChatError("not_owner", "Only the conversation's owner can remove members.")
    target = (
        Membership.objects.select_related("user", "conversation")
        .filter(conversation_id=conversation_id, user__username=username, left__isnull=True)
        .first()
    )
    if target is None or target.pk == own.pk:
        raise ChatError("not_member", f"{username} is not a member you can remove.")
    target.conversation = own.conversation
    _record_departure(target, statement, action=MembershipChange.Action.REMOVE, actor=owner)
    _end_membership(
        target, event="member.removed", removed=True, reason=KeyEpoch.Reason.REMOVED, trigger=owner
    )


def list_conversations(user: User, page: int = 1) -> tuple[list[dict], bool]:
    """One page of the user's conversations, newest first, in two queries whatever the
    page holds (memberships with their conversations, then every listed member)."""
    size = settings.CONVERSATION_LIST_PAGE
    start = (page - 1) * size
    active = (
        Membership.objects.filter(left__isnull=True).select_related("user").order_by("joined", "pk")
    )
    memberships = list(
        Membership.objects.filter(user=user, left__isnull=True)
        .select_related("conversation__created_by")
        .prefetch_related(Prefetch("conversation__memberships", active, to_attr="active_members"))
        .order_by("-conversation__created", "conversation_id")[start : start + size + 1]
    )
    has_more = len(memberships) > size
    return [conversation_json(m.conversation) for m in memberships[:size]], has_more


def pending_invitations(user: User) -> list[Invitation]:
    return list(
        Invitation.objects.filter(invitee=user, status=Invitation.Status.PENDING)
        .select_related("conversation", "inviter", "invitee")
        .order_by("created")
    )


def conversation_ids_of(user: User) -> list[str]:
    return [
        str(pk)
        for pk in Membership.objects.filter(user=user, left__isnull=True).values_list(
            "conversation_id", flat=True
        )
    ]


def _co_member_ids(user: User, *, accepted_only: bool):
    memberships = Membership.objects.filter(left__isnull=True)
    if accepted_only:  # a message request shares no presence
        memberships = memberships.filter(accepted=True)
    conversations = memberships.filter(user=user).values("conversation_id")
    return memberships.filter(conversation_id__in=conversations).values_list("user_id", flat=True)


def key_audience(user: User) -> set[int]:
    """Who must hear that this user's keys changed or were revoked: everyone sharing a
    conversation with them (message requests included: their clients verify this user's
    signatures) and their mutual contacts."""
    mutual = mutual_contacts(user).values_list("pk", flat=True)
    return (set(_co_member_ids(user, accepted_only=False)) | set(mutual)) - {user.pk}


def presence_audience(user: User) -> set[int]:
    """Who may see this user's presence: co-members through accepted memberships on both
    sides, and mutual contacts (adding someone is a request they consent to by adding you
    back: no live status of strangers)."""
    mutual = mutual_contacts(user).values_list("pk", flat=True)
    return (set(_co_member_ids(user, accepted_only=True)) | set(mutual)) - {user.pk}


def search_users(user: User, query: str, limit: int = 1000) -> list[User]:
    """Active users other than the caller whose username or display name matches, among
    those listed in search (staff only when they opted in)."""
    listed = Q(listed_in_search=True) | Q(listed_in_search__isnull=True, is_staff=False)
    matches = User.objects.filter(listed, is_active=True).exclude(pk=user.pk)
    if query:
        matches = matches.filter(Q(username__icontains=query) | Q(display_name__icontains=query))
    return list(matches.order_by("username")[:limit])


def users_by_id(user_ids: list[int]) -> list[User]:
    return list(User.objects.filter(pk__in=user_ids))
