"""Ending an account: deactivation is the normal path; deletion is for accounts that never
took part in a conversation.

Deactivation keeps the account's history and ends its access:

* logins and requests are refused from now on (Django refuses an inactive user at every
  request; the chat app closes the user's sockets when the save happens);
* the active key pair is revoked, so every conversation of theirs re-keys without them
  and peers are told (`cert.revoked`);
* certificates stay (revoked), so what they signed still verifies for the others;
* memberships and messages stay: they are part of other people's history, and in members
  mode only the member can sign their own leave. The user is listed in those
  conversations' key records with no key; an owner can remove them.

A deleted account would take its messages, signed statements and certificates with it,
out of conversations other people still read; so deletion refuses any account that was
ever in a conversation and names the way out (deactivation).
"""

from dataclasses import dataclass

from django.db import transaction

from accounts.models import User
from chat.models import Conversation, Membership, Message
from keys.services import record_audit, revoke_user_keys


class AccountInUse(Exception):
    """The account took part in conversations: deleting it would break their history."""


@dataclass(frozen=True)
class Deactivation:
    changed: bool  # False: it was inactive already and held no active keys
    revoked: list[str]  # serials


@transaction.atomic
def deactivate_user(user: User, *, reason: str, by: User | None, via: str) -> Deactivation:
    """Deactivate `user` and revoke their keys (see the module's docstring); audited."""
    was_active = User.objects.select_for_update().filter(pk=user.pk, is_active=True).exists()
    if was_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    revoked = revoke_user_keys(user, reason=f"account deactivated: {reason}", by=by, via=via)
    if was_active or revoked:
        record_audit("user.deactivated", actor=by, subject=user, detail=reason, via=via)
    return Deactivation(changed=was_active or bool(revoked), revoked=revoked)


def finish_deactivation(user: User, *, reason: str, by: User | None, via: str) -> list[str]:
    """The user was saved inactive elsewhere (the admin's Active box): the same
    consequences as `deactivate_user`, audited as a deactivation."""
    with transaction.atomic():
        revoked = revoke_user_keys(user, reason=f"account deactivated: {reason}", by=by, via=via)
        record_audit("user.deactivated", actor=by, subject=user, detail=reason, via=via)
    return revoked


def record_reactivation(user: User, *, by: User | None, via: str) -> None:
    """Audit a deactivated user made active again. Their revoked keys stay revoked (never
    certified again): their client makes new ones at the next login."""
    record_audit("user.reactivated", actor=by, subject=user, via=via)


def participation(user: User) -> list[str]:
    """What ties the account to other people's conversations; [] if nothing does."""
    facts = []
    conversations = Membership.objects.filter(user=user).values("conversation").distinct()
    if count := conversations.count():
        facts.append(f"is or was a member of {count} conversation(s)")
    if count := Conversation.objects.filter(created_by=user).count():
        facts.append(f"created {count} conversation(s)")
    if count := Message.objects.filter(sender=user).count():
        facts.append(f"sent {count} message(s)")
    return facts


@transaction.atomic
def delete_user(user: User, *, reason: str, by: User | None, via: str) -> None:
    """Delete an account that never took part in a conversation, with its certificates,
    key backup, contacts and invitations; raise AccountInUse for any other."""
    facts = participation(user)
    if facts:
        raise AccountInUse(
            f"{user.username} {', '.join(facts)}, which other members keep; deleting the "
            f"account would break their history. Deactivate it instead "
            f"(manage.py deactivate_user {user.username} --reason ...): its keys are "
            f"revoked and it can no longer log in."
        )
    # Audited first, in the same transaction: the row's subject becomes empty with the
    # deletion, so the detail keeps the name.
    record_audit(
        "user.deleted", actor=by, subject=user, detail=f"{user.username}: {reason}", via=via
    )
    user.delete()
