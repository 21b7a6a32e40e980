"""The chat rules, called as the consumer calls them, with real keys and real crypto."""

import dataclasses

import pytest

from accounts.models import User
from chat.models import KeyEpoch, Message, OutboxEvent, WrappedKey
from chat.services import conversations, epochs, messages
from chat.tests.factories import epoch_key, make_member, seal
from client.securechat_client.conversation import encode_body
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from keys.services import revoke_own_keys
from securechat.jsonapi import ApiError

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def team(pki, users):
    dave = User.objects.create_user("dave")
    return {
        "alice": make_member(users["alice"], "ed25519"),
        "bob": make_member(users["bob"], "rsa-pss"),
        "charlie": make_member(users["charlie"], "dsa"),
        "dave": make_member(dave, "ecdsa-p256"),
    }


@pytest.fixture
def conversation(team):
    return conversations.create_conversation(team["alice"].user, ["bob"], title="plans")


def refused(code, call, *args, **kwargs):
    with pytest.raises(ApiError) as error:
        call(*args, **kwargs)
    assert error.value.code == code, error.value.message
    return True


def test_creating_a_conversation_wraps_a_key_for_every_member(team, conversation):
    epoch = KeyEpoch.objects.get(conversation=conversation, number=1)
    assert {w.member.username for w in epoch.wrapped_keys.all()} == {"alice", "bob"}
    assert epoch_key(team["alice"], conversation.id, 1) == epoch_key(
        team["bob"], conversation.id, 1
    )
    assert epoch.signer == "server"


def test_the_distribution_record_verifies_with_the_server_certificate(team, conversation):
    from keys.ca import server_signing_certificate

    epoch = KeyEpoch.objects.get(conversation=conversation, number=1)
    record = encoding.distribution_record(
        conversation_id=str(conversation.id),
        epoch=1,
        previous_epoch=0,
        roster_epoch=1,
        key_origin="server",
        signer="server",
        signer_serial=epoch.signer_serial,
        members=[
            (w.member.username, w.certificate_serial, bytes(w.wrapped_key))
            for w in epoch.wrapped_keys.all()
        ],
    )
    certificate = server_signing_certificate()
    signing.verify(bytes(certificate.spki_der), bytes(epoch.signature), record)


def test_a_message_is_stored_as_ciphertext_with_the_next_order(team, conversation):
    accepted = messages.accept_message(
        team["alice"].user, seal(team["alice"], conversation.id, 1, "hi bob")
    )
    second = messages.accept_message(
        team["bob"].user, seal(team["bob"], conversation.id, 1, "hi alice")
    )
    assert (accepted.order, second.order) == (1, 2)
    stored = Message.objects.get(order=1)
    assert b"hi bob" not in bytes(stored.ciphertext)
    key = epoch_key(team["bob"], conversation.id, 1)
    header = encoding.message_header(
        conversation_id=str(conversation.id),
        epoch=1,
        sender="alice",
        sender_serial=stored.sender_serial,
        device=stored.device,
        sequence=stored.sequence,
        timestamp_ms=stored.timestamp_ms,
    )
    assert wrapping.aes_gcm_decrypt(
        key, bytes(stored.iv), bytes(stored.ciphertext), header
    ) == encode_body("hi bob")


def test_a_retried_client_id_is_stored_once_and_acked_again(team, conversation):
    message = seal(team["alice"], conversation.id, 1, "once")
    first = messages.accept_message(team["alice"].user, message)
    again = messages.accept_message(team["alice"].user, message)
    assert first.order == again.order and Message.objects.count() == 1


def test_a_client_id_reused_in_another_conversation_is_refused(team, conversation):
    first = seal(team["alice"], conversation.id, 1, "first")
    stored = messages.accept_message(team["alice"].user, first)
    other = conversations.create_conversation(team["alice"].user, ["dave"])
    reused = dataclasses.replace(
        seal(team["alice"], other.id, 1, "second"), client_id=first.client_id
    )
    assert refused("client_id_reused", messages.accept_message, team["alice"].user, reused)
    kept = Message.objects.get()
    assert (kept.conversation_id, kept.order) == (conversation.id, stored.order)


def test_two_devices_of_one_user_interleave_and_a_replay_is_still_refused(team, conversation):
    alice = team["alice"]
    orders = []
    for sequence in range(1, 4):
        for device in ("a" * 32, "b" * 32):
            sealed = seal(alice, conversation.id, 1, "x", sequence=sequence, device=device)
            orders.append(messages.accept_message(alice.user, sealed).order)
    assert orders == list(range(1, 7))
    replay = seal(alice, conversation.id, 1, "again", sequence=2, device="b" * 32)
    assert refused("replayed", messages.accept_message, alice.user, replay)


def test_a_newcomer_acknowledges_only_what_it_can_read(team, conversation):
    alice = team["alice"]
    messages.accept_message(alice.user, seal(alice, conversation.id, 1, "before dave"))
    invitation = conversations.invite(str(conversation.id), alice.user, "dave")
    conversations.accept_invitation(invitation.pk, team["dave"].user)
    messages.accept_message(alice.user, seal(alice, conversation.id, 2, "with dave"))
    OutboxEvent.objects.all().delete()
    messages.acknowledge_delivery(str(conversation.id), team["dave"].user, 2)
    receipts = [row.event for row in OutboxEvent.objects.all()]
    assert [(r["type"], r["orders"]) for r in receipts] == [("message.delivered", [2])]


def test_a_non_member_is_refused(team, conversation):
    outsider = seal(team["charlie"], conversation.id, 1, "let me in", key=b"\x00" * 32)
    assert refused("not_member", messages.accept_message, team["charlie"].user, outsider)
    assert not Message.objects.exists()


def test_a_replayed_sequence_is_refused(team, conversation):
    messages.accept_message(
        team["alice"].user, seal(team["alice"], conversation.id, 1, "one", sequence=5)
    )
    replay = seal(team["alice"], conversation.id, 1, "two", sequence=5)
    assert refused("replayed", messages.accept_message, team["alice"].user, replay)
    assert Message.objects.count() == 1


def test_tampered_ciphertext_or_iv_is_refused(team, conversation):
    message = seal(team["alice"], conversation.id, 1, "original")
    flipped = bytes([message.ciphertext[0] ^ 1]) + message.ciphertext[1:]
    for tampered in (
        dataclasses.replace(message, ciphertext=flipped),
        dataclasses.replace(message, iv=bytes(12)),
    ):
        assert refused("bad_signature", messages.accept_message, team["alice"].user, tampered)
    assert not Message.objects.exists()


def test_a_signature_by_another_users_key_is_refused(team, conversation):
    forged = seal(team["alice"], conversation.id, 1, "from alice?")
    bob_signed = dataclasses.replace(forged, sender_serial=team["bob"].signing_serial)
    assert refused("wrong_certificate", messages.accept_message, team["alice"].user, bob_signed)
    other_key = dataclasses.replace(team["alice"], signing_key=team["bob"].signing_key)
    resigned = seal(other_key, conversation.id, 1, "from alice?")
    assert refused("bad_signature", messages.accept_message, team["alice"].user, resigned)


def test_a_revoked_signer_is_refused(team, conversation):
    key = epoch_key(team["alice"], conversation.id, 1)
    revoke_own_keys(team["alice"].user, "lost phone")
    message = seal(team["alice"], conversation.id, 1, "after revocation", key=key)
    assert refused("certificate_revoked", messages.accept_message, team["alice"].user, message)


def test_newcomer_gets_only_new_epochs_and_leaver_no_new_keys(team, conversation):
    alice, bob, dave = team["alice"], team["bob"], team["dave"]
    invitation = conversations.invite(conversation.id, alice.user, "dave")
    conversations.accept_invitation(invitation.pk, dave.user)
    assert not WrappedKey.objects.filter(epoch__number=1, member=dave.user).exists()
    assert epoch_key(dave, conversation.id, 2) == epoch_key(alice, conversation.id, 2)
    conversations.leave_conversation(conversation.id, bob.user)
    assert not WrappedKey.objects.filter(epoch__number=3, member=bob.user).exists()
    old = epoch_key(bob, conversation.id, 2)
    wrapped_for_dave = WrappedKey.objects.get(epoch__number=3, member=dave.user)
    with pytest.raises(CryptoError):
        wrapping.oaep_decrypt(bob.encryption_key, bytes(wrapped_for_dave.wrapped_key))
    assert old != epoch_key(dave, conversation.id, 3)
    assert messages.readable_epochs(str(conversation.id), dave.user) == [2, 3]


def test_an_old_epoch_is_refused_after_a_leave(team, conversation):
    conversations.invite(conversation.id, team["alice"].user, "dave")
    invitation = conversations.pending_invitations(team["dave"].user)[0]
    conversations.accept_invitation(invitation.pk, team["dave"].user)
    conversations.leave_conversation(conversation.id, team["bob"].user)
    message = seal(team["alice"], conversation.id, 2, "old key")
    assert refused("stale_epoch", messages.accept_message, team["alice"].user, message)


def test_the_previous_epoch_is_accepted_briefly_after_a_join_only(team, conversation, settings):
    invitation = conversations.invite(conversation.id, team["alice"].user, "dave")
    conversations.accept_invitation(invitation.pk, team["dave"].user)
    in_flight = seal(team["alice"], conversation.id, 1, "sent before the join arrived")
    assert messages.accept_message(team["alice"].user, in_flight).order == 1
    settings.EPOCH_GRACE_SECONDS = 0
    late = seal(team["alice"], conversation.id, 1, "too late")
    assert refused("stale_epoch", messages.accept_message, team["alice"].user, late)


def test_history_shows_only_epochs_the_reader_was_a_member_of(team, conversation):
    alice, dave = team["alice"], team["dave"]
    messages.accept_message(alice.user, seal(alice, conversation.id, 1, "before dave"))
    invitation = conversations.invite(conversation.id, alice.user, "dave")
    conversations.accept_invitation(invitation.pk, dave.user)
    messages.accept_message(alice.user, seal(alice, conversation.id, 2, "with dave"))
    page, _ = messages.history(str(conversation.id), dave.user, since=0, before=None, limit=50)
    assert [m["epoch"] for m in page] == [2]
    page, _ = messages.history(str(conversation.id), alice.user, since=0, before=None, limit=50)
    assert [m["order"] for m in page] == [1, 2]


def test_invitation_rules(team, conversation):
    alice, dave, charlie = team["alice"], team["dave"], team["charlie"]
    assert refused("unknown_user", conversations.invite, conversation.id, alice.user, "nobody")
    assert refused("already_member", conversations.invite, conversation.id, alice.user, "bob")
    assert refused("not_member", conversations.invite, conversation.id, charlie.user, "dave")
    invitation = conversations.invite(conversation.id, alice.user, "dave")
    assert refused("not_found", conversations.accept_invitation, invitation.pk, charlie.user)
    conversations.decline_invitation(invitation.pk, dave.user)
    assert refused("invitation_closed", conversations.accept_invitation, invitation.pk, dave.user)


def test_only_the_owner_removes_members(team, conversation):
    assert refused(
        "not_owner", conversations.remove_member, conversation.id, team["bob"].user, "alice"
    )
    conversations.remove_member(conversation.id, team["alice"].user, "bob")
    assert refused(
        "not_member",
        messages.accept_message,
        team["bob"].user,
        seal(team["bob"], conversation.id, 2, "still here?", key=b"\x00" * 32),
    )


def test_the_rotation_bound_starts_a_new_epoch(team, conversation, settings):
    settings.EPOCH_MAX_MESSAGES = 2
    alice = team["alice"]
    messages.accept_message(alice.user, seal(alice, conversation.id, 1, "one"))
    messages.accept_message(alice.user, seal(alice, conversation.id, 1, "two"))
    conversation.refresh_from_db()
    assert conversation.current_epoch == 2
    assert KeyEpoch.objects.get(conversation=conversation, number=2).reason == "rotation"


def test_revoking_a_members_keys_rekeys_their_conversations(team, conversation):
    from django.db import transaction

    with transaction.atomic():
        revoke_own_keys(team["bob"].user, "lost laptop")
    # on_commit callbacks do not run inside the test transaction: run the hook directly
    epochs.rekey_conversations_of(team["bob"].user, KeyEpoch.Reason.KEY_REVOKED)
    conversation.refresh_from_db()
    epoch = KeyEpoch.objects.get(conversation=conversation, number=conversation.current_epoch)
    assert epoch.reason == "key_revoked"
    # bob stays a member, listed without a key: nothing new reaches his revoked key
    keys = {w.member.username: w.certificate_serial for w in epoch.wrapped_keys.all()}
    assert keys == {"alice": team["alice"].encryption_serial, "bob": ""}
    assert epoch.wrapped_keys.get(member=team["bob"].user).wrapped_key == b""


def test_delivery_receipts_are_batched_per_sender(team, conversation):
    alice = team["alice"]
    for text in ("a", "b", "c"):
        messages.accept_message(alice.user, seal(alice, conversation.id, 1, text))
    OutboxEvent.objects.all().delete()
    assert messages.acknowledge_delivery(str(conversation.id), team["bob"].user, 3) == 3
    receipts = [row.event for row in OutboxEvent.objects.all()]
    assert [(r["type"], r["orders"]) for r in receipts] == [("message.delivered", [1, 2, 3])]
    assert messages.undelivered(team["bob"].user) == []
