"""Members key origin, server side: only member-signed changes, only the asked member's
key, key origin fixed, and a way out when a member hands out a key that does not open."""

import pytest

from accounts.models import User
from chat.models import Conversation, Invitation, KeyEpoch, MembershipChange
from chat.services import conversations, epochs
from chat.tests.factories import make_member, member_record, sign_statement, submit_key
from securechat.jsonapi import ApiError

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def team(pki, users):
    dave = User.objects.create_user("dave")
    return {
        "alice": make_member(users["alice"], "ed25519"),
        "bob": make_member(users["bob"], "ecdsa-p256"),
        "charlie": make_member(users["charlie"], "ed25519"),
        "dave": make_member(dave, "ed25519"),
    }


@pytest.fixture
def conversation(team):
    """alice (owner) and bob, epoch 1 keyed by alice."""
    created = conversations.create_conversation(team["alice"].user, ["bob"], key_origin="members")
    submit_key(team["alice"], created, [team["alice"], team["bob"]])
    created.refresh_from_db()
    return created


def refused(code, call, *args, **kwargs) -> bool:
    with pytest.raises(ApiError) as error:
        call(*args, **kwargs)
    assert error.value.code == code, error.value.message
    return True


def invite(team, conversation, inviter, invitee, statement=None) -> Invitation:
    statement = statement or sign_statement(team[inviter], conversation, "add", team[invitee])
    return conversations.invite(
        str(conversation.id), team[inviter].user, invitee, statement=statement
    )


def test_the_first_key_is_asked_of_the_creator_and_starts_roster_one(team, conversation):
    epoch = conversation.epochs.get(number=1)
    assert (epoch.signer, epoch.previous_epoch, epoch.roster_epoch) == ("alice", 0, 1)
    assert conversation.roster_epoch == 1 and conversation.pending_asked is None


def test_members_mode_needs_every_member_to_have_keys(team):
    User.objects.create_user("erin")
    assert refused(
        "no_active_keys",
        conversations.create_conversation,
        team["alice"].user,
        ["bob", "erin"],
        key_origin="members",
    )


def test_key_origin_never_changes(conversation):
    conversation.key_origin = Conversation.KeyOrigin.SERVER
    with pytest.raises(ValueError, match="never changes"):
        conversation.save()
    with pytest.raises(ValueError):
        conversation.save(update_fields=["key_origin"])
    assert Conversation.objects.get(pk=conversation.pk).key_origin == "members"


def test_only_the_asked_member_may_submit_the_key(team, conversation):
    invitation = invite(team, conversation, "alice", "charlie")
    conversations.accept_invitation(invitation.pk, team["charlie"].user)
    conversation.refresh_from_db()
    assert conversation.pending_asked_id == team["alice"].user.pk  # the inviter
    everyone = [team["alice"], team["bob"], team["charlie"]]
    assert refused("not_asked", submit_key, team["bob"], conversation, everyone)
    submit_key(team["alice"], conversation, everyone)
    conversation.refresh_from_db()
    assert conversation.current_epoch == 2 and conversation.roster_epoch == 2
    assert MembershipChange.objects.get().state == MembershipChange.State.APPLIED


def test_a_record_that_leaves_out_a_member_is_refused(team, conversation):
    invitation = invite(team, conversation, "alice", "charlie")
    conversations.accept_invitation(invitation.pk, team["charlie"].user)
    assert refused(
        "bad_distribution", submit_key, team["alice"], conversation, [team["alice"], team["bob"]]
    )


def test_a_record_that_does_not_sign_the_pending_statements_is_refused(team, conversation):
    invitation = invite(team, conversation, "alice", "charlie")
    conversations.accept_invitation(invitation.pk, team["charlie"].user)
    everyone = [team["alice"], team["bob"], team["charlie"]]
    wrapped, _ = member_record(team["alice"], conversation, everyone)
    MembershipChange.objects.update(state=MembershipChange.State.VOID)  # hide it while signing
    _, unsigned_changes = member_record(team["alice"], conversation, everyone)
    MembershipChange.objects.update(state=MembershipChange.State.PENDING)
    assert refused(
        "bad_distribution",
        epochs.submit_member_epoch,
        str(conversation.id),
        team["alice"].user,
        number=conversation.pending_epoch,
        signer_serial=team["alice"].signing_serial,
        signature=unsigned_changes,
        members=wrapped,
    )


def test_an_invitation_must_carry_the_inviters_own_signed_addition(team, conversation):
    conversation_id, alice = str(conversation.id), team["alice"].user
    assert refused("statement_required", conversations.invite, conversation_id, alice, "charlie")
    by_bob = sign_statement(team["bob"], conversation, "add", team["charlie"])
    assert refused(
        "bad_statement", conversations.invite, conversation_id, alice, "charlie", statement=by_bob
    )
    genuine = sign_statement(team["alice"], conversation, "add", team["charlie"])
    forged = type(genuine)(**{**genuine.__dict__, "nonce": bytes(16)})  # signature now fails
    assert refused(
        "bad_statement", conversations.invite, conversation_id, alice, "charlie", statement=forged
    )
    assert not Invitation.objects.exists()


def test_an_addition_names_the_keys_the_invitee_has(team, conversation):
    statement = sign_statement(team["alice"], conversation, "add", team["charlie"])
    make_member(team["charlie"].user)  # charlie registers new keys before the invitation
    assert refused(
        "keys_changed",
        conversations.invite,
        str(conversation.id),
        team["alice"].user,
        "charlie",
        statement=statement,
    )


def test_an_invitation_made_before_the_member_list_changed_is_stale(team, conversation):
    to_charlie = invite(team, conversation, "alice", "charlie")
    to_dave = invite(team, conversation, "bob", "dave")
    conversations.accept_invitation(to_charlie.pk, team["charlie"].user)
    submit_key(team["alice"], conversation, [team["alice"], team["bob"], team["charlie"]])
    assert refused(
        "invitation_stale", conversations.accept_invitation, to_dave.pk, team["dave"].user
    )
    renewed = invite(team, conversation, "bob", "dave")  # bob invites again: a new statement
    assert renewed.pk == to_dave.pk
    conversations.accept_invitation(to_dave.pk, team["dave"].user)
    assert MembershipChange.objects.filter(state="void").count() == 1


def test_a_stale_statement_is_refused(team, conversation):
    old = sign_statement(team["alice"], conversation, "add", team["charlie"])
    conversation.roster_epoch += 1
    Conversation.objects.filter(pk=conversation.pk).update(roster_epoch=conversation.roster_epoch)
    assert refused(
        "stale_roster",
        conversations.invite,
        str(conversation.id),
        team["alice"].user,
        "charlie",
        statement=old,
    )


def test_a_leave_is_signed_by_the_leaver_and_a_removal_by_the_owner(team, conversation):
    conversation_id = str(conversation.id)
    invitation = invite(team, conversation, "alice", "charlie")
    conversations.accept_invitation(invitation.pk, team["charlie"].user)
    submit_key(team["alice"], conversation, [team["alice"], team["bob"], team["charlie"]])
    assert refused(
        "statement_required", conversations.leave_conversation, conversation_id, team["bob"].user
    )
    by_alice = sign_statement(team["alice"], conversation, "leave", team["alice"])
    assert refused(
        "bad_statement",
        conversations.leave_conversation,
        conversation_id,
        team["bob"].user,
        statement=by_alice,
    )
    conversations.leave_conversation(
        conversation_id,
        team["bob"].user,
        statement=sign_statement(team["bob"], conversation, "leave", team["bob"]),
    )
    removal = sign_statement(team["alice"], conversation, "remove", team["charlie"])
    conversations.remove_member(conversation_id, team["alice"].user, "charlie", statement=removal)
    conversation.refresh_from_db()
    assert conversation.pending_asked_id == team["alice"].user.pk
    submit_key(team["alice"], conversation, [team["alice"]])
    conversation.refresh_from_db()
    epoch = KeyEpoch.objects.get(conversation=conversation, number=conversation.current_epoch)
    assert {c.action for c in epoch.changes.all()} == {"leave", "remove"}


def test_a_key_that_does_not_open_is_remade_by_the_member_who_reports_it(team, conversation):
    invitation = invite(team, conversation, "alice", "charlie")
    conversations.accept_invitation(invitation.pk, team["charlie"].user)
    everyone = [team["alice"], team["bob"], team["charlie"]]
    submit_key(team["alice"], conversation, everyone, garbage_for={"bob", "charlie"})
    conversation_id, number = str(conversation.id), 2
    assert refused(
        "bad_distribution",
        epochs.report_unreadable_epoch,
        conversation_id,
        team["alice"].user,
        number,
    )
    assert epochs.report_unreadable_epoch(conversation_id, team["bob"].user, number) == 3
    conversation.refresh_from_db()
    assert conversation.pending_asked_id == team["bob"].user.pk
    assert KeyEpoch.objects.get(conversation=conversation, number=2).reported
    assert refused(
        "not_asked", submit_key, team["charlie"], conversation, everyone
    )  # a second reporter does not take over
    submit_key(team["bob"], conversation, everyone)
    conversation.refresh_from_db()
    assert conversation.current_epoch == 3 and conversation.roster_epoch == 2
    assert refused(
        "stale_epoch", epochs.report_unreadable_epoch, conversation_id, team["bob"].user, 2
    )


def test_an_epoch_is_reported_once(team, conversation):
    invitation = invite(team, conversation, "alice", "charlie")
    conversations.accept_invitation(invitation.pk, team["charlie"].user)
    everyone = [team["alice"], team["bob"], team["charlie"]]
    submit_key(team["alice"], conversation, everyone, garbage_for={"bob"})
    conversation_id = str(conversation.id)
    assert epochs.report_unreadable_epoch(conversation_id, team["bob"].user, 2) == 3
    submit_key(team["bob"], conversation, everyone)
    assert refused(
        "stale_epoch", epochs.report_unreadable_epoch, conversation_id, team["charlie"].user, 2
    )
    assert epochs.report_unreadable_epoch(conversation_id, team["charlie"].user, 3) == 4
    conversation.refresh_from_db()
    submit_key(team["charlie"], conversation, everyone)
    assert epochs.report_unreadable_epoch(conversation_id, team["alice"].user, 4) == 5
    # reported epochs are settled once: a second report of the same epoch changes nothing
    conversation.refresh_from_db()
    submit_key(team["alice"], conversation, everyone)
    KeyEpoch.objects.filter(conversation=conversation, number=5).update(reported=True)
    assert epochs.report_unreadable_epoch(conversation_id, team["bob"].user, 5) is None
