"""The client's own checks, with real keys and no server."""

import base64

import pytest

from client.securechat_client.conversation import ConversationState, decode_body, encode_body
from client.securechat_client.errors import TrustError
from cryptokit import encoding, signing, wrapping
from cryptokit.keys import spki_der
from cryptokit.membership import Statement, key_hashes

CONVERSATION = "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b"


@pytest.fixture(scope="module")
def people():
    """Signing and encryption keys for alice, bob, dave and eve (an outsider)."""
    return {
        name: (signing.generate_signing_key("ed25519"), signing.generate_encryption_key(2048))
        for name in ("alice", "bob", "dave", "eve")
    }


def statement(people, *, action, subject, actor, roster):
    """`actor`'s signed membership statement (an addition names the subject's keys)."""
    hashes = (b"", b"")
    if action == "add":
        hashes = key_hashes(*(key.public_key() for key in people[subject]))
    return Statement.create(
        CONVERSATION,
        people[actor][0],
        action=action,
        subject=subject,
        actor=actor,
        actor_serial="aa",
        roster_epoch=roster,
        key_hashes=hashes,
    )


def record(
    people,
    *,
    epoch,
    signer,
    members,
    key,
    previous=None,
    roster=None,
    changes=(),
    origin="members",
    signer_key=None,
):
    previous = epoch - 1 if previous is None else previous
    roster = roster or (epoch if changes or epoch == 1 else 1)
    wrapped = [
        (m, f"{i + 1:x}", wrapping.oaep_encrypt(people[m][1].public_key(), key))
        for i, m in enumerate(members)
    ]
    data = encoding.distribution_record(
        conversation_id=CONVERSATION,
        epoch=epoch,
        previous_epoch=previous,
        roster_epoch=roster,
        key_origin=origin,
        signer=signer,
        signer_serial="aa",
        members=wrapped,
        changes=[c.signed_bytes(CONVERSATION) for c in changes],
    )
    signer_key = signer_key or people[signer][0]
    return {
        "conversation": CONVERSATION,
        "epoch": epoch,
        "previous_epoch": previous,
        "roster_epoch": roster,
        "key_origin": origin,
        "signer": signer,
        "signer_serial": "aa",
        "signature": base64.b64encode(signing.sign(signer_key, data)).decode(),
        "changes": [c.to_json() for c in changes],
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
        statements=[Statement.from_json(c) for c in rec["changes"]],
    )


def refusal_code(state, people, me, rec) -> str:
    with pytest.raises(TrustError) as refusal:
        accept(state, people, me, rec)
    return refusal.value.code


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


def adding_dave(people, *, actor="alice", roster=1):
    return statement(people, action="add", subject="dave", actor=actor, roster=roster)


def test_a_record_adding_a_member_signed_by_a_non_member_is_refused(people, bobs_view):
    sneaky = record(
        people,
        epoch=2,
        signer="eve",
        members=["alice", "bob", "eve"],
        key=wrapping.new_epoch_key(),
        changes=[statement(people, action="add", subject="eve", actor="eve", roster=1)],
    )
    assert refusal_code(bobs_view, people, "bob", sneaky) == "signer_not_member"
    assert 2 not in bobs_view.epoch_keys


def test_an_addition_without_a_members_statement_is_refused(people, bobs_view):
    silent = record(
        people,
        epoch=2,
        signer="alice",
        members=["alice", "bob", "dave"],
        key=wrapping.new_epoch_key(),
    )
    assert refusal_code(bobs_view, people, "bob", silent) == "members_mismatch"


def test_a_record_that_drops_a_member_silently_is_refused(people, bobs_view):
    dropped = record(people, epoch=2, signer="bob", members=["bob"], key=wrapping.new_epoch_key())
    assert refusal_code(bobs_view, people, "bob", dropped) == "members_mismatch"


def test_the_newcomer_cannot_sign_their_own_admission(people, bobs_view):
    self_added = record(
        people,
        epoch=2,
        signer="dave",
        members=["alice", "bob", "dave"],
        key=wrapping.new_epoch_key(),
        changes=[adding_dave(people, actor="dave")],
    )
    assert refusal_code(bobs_view, people, "bob", self_added) == "signer_not_member"


def test_an_addition_signed_by_a_current_member_is_accepted(people, bobs_view):
    key = wrapping.new_epoch_key()
    accept(
        bobs_view,
        people,
        "bob",
        record(
            people,
            epoch=2,
            signer="bob",
            members=["alice", "bob", "dave"],
            key=key,
            changes=[adding_dave(people)],
        ),
    )
    assert bobs_view.epoch_keys[2] == key
    assert bobs_view.epochs[2].members == {"alice", "bob", "dave"}
    assert bobs_view.roster_epoch == 2


def test_a_replayed_addition_is_stale(people, bobs_view):
    add = adding_dave(people)
    accept(
        bobs_view,
        people,
        "bob",
        record(
            people,
            epoch=2,
            signer="alice",
            members=["alice", "bob", "dave"],
            key=wrapping.new_epoch_key(),
            changes=[add],
        ),
    )
    leave = statement(people, action="leave", subject="dave", actor="dave", roster=2)
    accept(
        bobs_view,
        people,
        "bob",
        record(
            people,
            epoch=3,
            signer="alice",
            members=["alice", "bob"],
            key=wrapping.new_epoch_key(),
            changes=[leave],
        ),
    )
    replay = record(
        people,
        epoch=4,
        signer="alice",
        members=["alice", "bob", "dave"],
        key=wrapping.new_epoch_key(),
        changes=[add],
    )
    assert refusal_code(bobs_view, people, "bob", replay) == "stale_statement"


def test_only_the_owner_removes_and_only_a_member_leaves_for_themselves(people, bobs_view):
    by_bob = statement(people, action="remove", subject="alice", actor="bob", roster=1)
    removal = record(
        people,
        epoch=2,
        signer="bob",
        members=["bob"],
        key=wrapping.new_epoch_key(),
        changes=[by_bob],
    )
    assert refusal_code(bobs_view, people, "bob", removal) == "not_owner"
    by_owner = statement(people, action="remove", subject="bob", actor="alice", roster=1)
    accept(
        bobs_view,
        people,
        "bob",
        record(
            people,
            epoch=2,
            signer="alice",
            members=["alice"],
            key=wrapping.new_epoch_key(),
            changes=[by_owner],
        ),
    )
    assert 2 not in bobs_view.epoch_keys and bobs_view.epochs[2].members == {"alice"}


def test_a_leaver_cannot_make_the_next_key(people, bobs_view):
    leave = statement(people, action="leave", subject="bob", actor="bob", roster=1)
    rec = record(
        people,
        epoch=2,
        signer="bob",
        members=["alice"],
        key=wrapping.new_epoch_key(),
        changes=[leave],
    )
    assert refusal_code(bobs_view, people, "bob", rec) == "signer_not_member"


def test_a_record_with_a_swapped_wrapped_key_is_refused(people, bobs_view):
    rec = record(
        people, epoch=2, signer="alice", members=["alice", "bob"], key=wrapping.new_epoch_key()
    )
    rec["members"][0]["wrapped_key"] = rec["members"][1]["wrapped_key"]
    assert refusal_code(bobs_view, people, "bob", rec) == "bad_distribution"


def test_a_key_that_does_not_open_is_its_own_refusal(people, bobs_view):
    rec = record(
        people, epoch=2, signer="alice", members=["alice", "bob"], key=wrapping.new_epoch_key()
    )
    garbage = dict(rec)
    # alice signs a record whose wrapped key for bob is bytes that open nothing
    wrapped = [
        ("alice", "1", base64.b64decode(rec["members"][0]["wrapped_key"])),
        ("bob", "2", bytes(256)),
    ]
    data = encoding.distribution_record(
        conversation_id=CONVERSATION,
        epoch=2,
        previous_epoch=1,
        roster_epoch=1,
        key_origin="members",
        signer="alice",
        signer_serial="aa",
        members=wrapped,
    )
    garbage["signature"] = base64.b64encode(signing.sign(people["alice"][0], data)).decode()
    garbage["members"] = [
        {"username": u, "serial": s, "wrapped_key": base64.b64encode(w).decode()}
        for u, s, w in wrapped
    ]
    assert refusal_code(bobs_view, people, "bob", garbage) == "key_does_not_open"
    assert 2 not in bobs_view.epoch_keys


def test_key_origin_is_fixed_by_the_first_record(people, bobs_view):
    switched = record(
        people,
        epoch=2,
        signer="alice",
        members=["alice", "bob", "eve"],
        key=wrapping.new_epoch_key(),
        origin="server",
    )
    assert refusal_code(bobs_view, people, "bob", switched) == "origin_changed"


def test_a_record_that_skips_or_forks_the_chain_is_refused(people, bobs_view):
    skipping = record(
        people, epoch=3, previous=2, signer="alice", members=["alice", "bob"], key=b"k" * 32
    )
    assert refusal_code(bobs_view, people, "bob", skipping) == "chain_gap"
    accept(
        bobs_view,
        people,
        "bob",
        record(
            people, epoch=3, previous=1, signer="alice", members=["alice", "bob"], key=b"k" * 32
        ),
    )
    fork = record(
        people, epoch=2, previous=1, signer="alice", members=["alice", "bob"], key=b"k" * 32
    )
    assert refusal_code(bobs_view, people, "bob", fork) == "chain_gap"


def test_the_first_epoch_must_come_from_the_creator(people):
    state = ConversationState(CONVERSATION, key_origin="members", created_by="alice")
    rec = record(
        people, epoch=1, signer="bob", members=["alice", "bob"], key=wrapping.new_epoch_key()
    )
    assert refusal_code(state, people, "bob", rec) == "signer_not_member"


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
    assert refusal_code(state, people, "bob", rec) == "bad_distribution"


def message_between(people, bobs_view, alices_view, text="hello"):
    return alices_view.encrypt(
        text, sender="alice", device="a" * 32, signing_key=people["alice"][0], signing_serial="aa"
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


def test_a_message_from_someone_not_in_its_epoch_is_refused(people, bobs_view, alices_view):
    body = message_between(people, bobs_view, alices_view)
    with pytest.raises(TrustError) as refusal:
        bobs_view.decrypt(
            delivered(body, sender="dave"), sender_public_key=people["alice"][0].public_key()
        )
    assert refusal.value.code == "not_member"


def test_a_message_body_is_versioned_json():
    assert decode_body(encode_body("zoë says hi")) == "zoë says hi"
    for bad in (b"plain text", b'{"v": 2, "text": "x"}', b'{"v": 1}', b"[1]", b"\xff"):
        with pytest.raises(TrustError) as refusal:
            decode_body(bad)
        assert refusal.value.code == "bad_body"
