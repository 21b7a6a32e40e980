"""The client's own checks, with real keys and no server."""

import base64

import pytest

from client.securechat_client.conversation import ConversationState
from client.securechat_client.errors import TrustError
from cryptokit import encoding, signing, wrapping
from cryptokit.keys import spki_der

CONVERSATION = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b"


@pytest.fixture(scope="module")
def people():
    """Signing and encryption keys for alice, bob, dave and eve (an outsider)."""
    return {
        name: (signing.generate_signing_key("ed25519"), signing.generate_encryption_key(2048))
        for name in ("alice", "bob", "dave", "eve")
    }


def record(people, *, epoch, signer, members, key, origin="members", signer_key=None):
    wrapped = [
        (m, f"{i + 1:x}", wrapping.oaep_encrypt(people[m][1].public_key(), key))
        for i, m in enumerate(members)
    ]
    data = encoding.distribution_record(
        conversation_id=CONVERSATION,
        epoch=epoch,
        key_origin=origin,
        signer=signer,
        signer_serial="aa",
        members=wrapped,
    )
    signer_key = signer_key or people[signer][0]
    return {
        "conversation": CONVERSATION,
        "epoch": epoch,
        "key_origin": origin,
        "signer": signer,
        "signer_serial": "aa",
        "signature": base64.b64encode(signing.sign(signer_key, data)).decode(),
        "members": [
            {"username": u, "serial": s, "wrapped_key": base64.b64encode(w).decode()}
            for u, s, w in wrapped
        ],
    }


def accept(state, people, me, rec, signer=None):
    signer = signer or rec["signer"]
    state.accept_epoch(
        rec,
        me=me,
        my_encryption_key=people[me][1],
        signer_public_key=people[signer][0].public_key(),
        signer_is_server=False,
    )


@pytest.fixture
def bobs_view(people):
    """bob's client after verifying epoch 1 of alice's members-mode conversation."""
    state = ConversationState(CONVERSATION, key_origin="members", created_by="alice")
    accept(
        state,
        people,
        "bob",
        record(
            people, epoch=1, signer="alice", members=["alice", "bob"], key=wrapping.new_epoch_key()
        ),
    )
    return state


def test_a_record_adding_a_member_signed_by_a_non_member_is_refused(people, bobs_view):
    sneaky = record(
        people, epoch=2, signer="eve", members=["alice", "bob", "eve"], key=wrapping.new_epoch_key()
    )
    with pytest.raises(TrustError) as refusal:
        accept(bobs_view, people, "bob", sneaky)
    assert refusal.value.code == "signer_not_member"
    assert 2 not in bobs_view.epoch_keys


def test_the_newcomer_cannot_sign_their_own_admission(people, bobs_view):
    self_added = record(
        people,
        epoch=2,
        signer="dave",
        members=["alice", "bob", "dave"],
        key=wrapping.new_epoch_key(),
    )
    with pytest.raises(TrustError) as refusal:
        accept(bobs_view, people, "bob", self_added)
    assert refusal.value.code == "signer_not_member"


def test_the_same_addition_signed_by_a_current_member_is_accepted(people, bobs_view):
    key = wrapping.new_epoch_key()
    accept(
        bobs_view,
        people,
        "bob",
        record(people, epoch=2, signer="alice", members=["alice", "bob", "dave"], key=key),
    )
    assert bobs_view.epoch_keys[2] == key
    assert bobs_view.epoch_members[2] == ["alice", "bob", "dave"]


def test_a_record_with_a_swapped_wrapped_key_is_refused(people, bobs_view):
    rec = record(
        people, epoch=2, signer="alice", members=["alice", "bob"], key=wrapping.new_epoch_key()
    )
    rec["members"][0]["wrapped_key"] = rec["members"][1]["wrapped_key"]
    with pytest.raises(TrustError) as refusal:
        accept(bobs_view, people, "bob", rec)
    assert refusal.value.code == "bad_distribution"


def test_the_first_epoch_must_come_from_the_creator(people):
    state = ConversationState(CONVERSATION, key_origin="members", created_by="alice")
    with pytest.raises(TrustError) as refusal:
        accept(
            state,
            people,
            "bob",
            record(
                people,
                epoch=1,
                signer="bob",
                members=["alice", "bob"],
                key=wrapping.new_epoch_key(),
            ),
        )
    assert refusal.value.code == "signer_not_member"


def test_a_server_record_must_come_from_the_server(people):
    state = ConversationState(CONVERSATION, created_by="alice")
    rec = record(
        people,
        epoch=1,
        signer="alice",
        members=["alice", "bob"],
        key=wrapping.new_epoch_key(),
        origin="server",
    )
    with pytest.raises(TrustError) as refusal:
        accept(state, people, "bob", rec)
    assert refusal.value.code == "bad_distribution"


def message_between(people, bobs_view, alices_view, text="hello"):
    return alices_view.encrypt(
        text, sender="alice", signing_key=people["alice"][0], signing_serial="aa"
    )


@pytest.fixture
def alices_view(people, bobs_view):
    state = ConversationState(CONVERSATION, key_origin="members", created_by="alice")
    state.epoch_keys = dict(bobs_view.epoch_keys)
    return state


def delivered(body, order=1, sender="alice"):
    return {**body, "order": order, "sender": sender}


def test_encrypt_then_decrypt_round_trip_and_replay_refused(people, bobs_view, alices_view):
    body = message_between(people, bobs_view, alices_view, "the plan")
    alice_key = people["alice"][0].public_key()
    opened = bobs_view.decrypt(delivered(body), sender_public_key=alice_key)
    assert opened.text == "the plan" and opened.sequence == 1
    assert bobs_view.is_duplicate(1)
    with pytest.raises(TrustError) as refusal:
        bobs_view.decrypt(delivered(body, order=2), sender_public_key=alice_key)
    assert refusal.value.code == "replayed"


@pytest.mark.parametrize("field", ["ciphertext", "iv", "timestamp_ms"])
def test_a_tampered_message_is_refused(people, bobs_view, alices_view, field):
    body = message_between(people, bobs_view, alices_view)
    if field == "timestamp_ms":
        body[field] += 1
    else:
        data = bytearray(base64.b64decode(body[field]))
        data[0] ^= 1
        body[field] = base64.b64encode(bytes(data)).decode()
    with pytest.raises(TrustError) as refusal:
        bobs_view.decrypt(delivered(body), sender_public_key=people["alice"][0].public_key())
    assert refusal.value.code == "bad_signature"


def test_a_message_from_an_epoch_without_my_key_is_unreadable(people, bobs_view, alices_view):
    alices_view.epoch_keys[7] = wrapping.new_epoch_key()
    body = message_between(people, bobs_view, alices_view)
    with pytest.raises(TrustError) as refusal:
        bobs_view.decrypt(delivered(body), sender_public_key=people["alice"][0].public_key())
    assert refusal.value.code == "no_epoch_key"


def test_a_signature_by_someone_else_is_refused(people, bobs_view, alices_view):
    body = message_between(people, bobs_view, alices_view)
    with pytest.raises(TrustError) as refusal:
        bobs_view.decrypt(delivered(body), sender_public_key=people["eve"][0].public_key())
    assert refusal.value.code == "bad_signature"
    assert spki_der(people["eve"][0].public_key())
