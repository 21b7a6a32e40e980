"""The byte-exact encodings that get signed."""

import hashlib
import itertools

import pytest

from cryptokit import encoding

HEADER = {
    "conversation_id": "0b8e2f0a-3c1d-4e5f-9a7b-6c5d4e3f2a1b",
    "epoch": 3,
    "sender": "zoë",
    "sender_serial": "5f3a9c",
    "device": "0123456789abcdef0123456789abcdef",
    "sequence": 42,
    "timestamp_ms": 1764000000000,
}
MEMBERS = [
    ("bob", "0b0b", b"wrapped-for-bob"),
    ("alice", "0a0a", b"wrapped-for-alice"),
    ("carol", "0c0c", b"wrapped-for-carol"),
]
RECORD = {
    "conversation_id": HEADER["conversation_id"],
    "epoch": 3,
    "previous_epoch": 2,
    "roster_epoch": 2,
    "key_origin": "members",
    "signer": "alice",
    "signer_serial": "0a",
}
STATEMENT = {
    "conversation_id": HEADER["conversation_id"],
    "key_origin": "members",
    "roster_epoch": 2,
    "action": "add",
    "subject": "dave",
    "subject_signing_sha256": b"s" * 32,
    "subject_encryption_sha256": b"e" * 32,
    "actor": "alice",
    "actor_serial": "0a",
    "nonce": b"n" * 16,
}


def fields(data: bytes) -> list[bytes]:
    """Split a length-prefixed encoding back into its fields (and check it is exact)."""
    out, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    assert offset == len(data)
    return out


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def test_fields_are_u32be_length_prefixed():
    assert encoding.encode(b"ab", "é", 1) == (
        b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x02\xc3\xa9" + b"\x00\x00\x00\x08" + u64(1)
    )


def test_message_header_fields_in_order():
    assert fields(encoding.message_header(**HEADER)) == [
        b"securechat.message-header.v2",
        u64(2),
        HEADER["conversation_id"].encode(),
        u64(3),
        "zoë".encode(),
        b"5f3a9c",
        b"0123456789abcdef0123456789abcdef",
        u64(42),
        u64(1764000000000),
    ]


def test_message_signed_bytes_wraps_header_iv_and_ciphertext():
    header = encoding.message_header(**HEADER)
    signed = encoding.message_signed_bytes(header=header, iv=b"\x01" * 12, ciphertext=b"ct")
    assert fields(signed) == [b"securechat.message.v1", header, b"\x01" * 12, b"ct"]


@pytest.mark.parametrize("name", ["epoch", "sequence", "timestamp_ms"])
def test_integers_must_fit_in_64_unsigned_bits(name):
    assert encoding.message_header(**{**HEADER, name: 2**64 - 1})
    assert encoding.message_header(**{**HEADER, name: 0})
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            encoding.message_header(**{**HEADER, name: bad})


def test_booleans_and_other_types_are_not_encodable():
    with pytest.raises(TypeError):
        encoding.message_header(**{**HEADER, "epoch": True})
    with pytest.raises(TypeError):
        encoding.encode(None)
    with pytest.raises(TypeError):
        encoding.encode(1.5)


@pytest.mark.parametrize("serial", ["5F3A9C", "", "0x5f", "5f 3a", "g1"])
def test_serials_must_be_lowercase_hex(serial):
    with pytest.raises(ValueError):
        encoding.message_header(**{**HEADER, "sender_serial": serial})
    with pytest.raises(ValueError):
        encoding.distribution_record(**RECORD, members=[("bob", serial, b"w")])
    with pytest.raises(ValueError):
        encoding.distribution_record(**{**RECORD, "signer_serial": serial}, members=MEMBERS)


def test_distribution_record_fields_in_order():
    record = encoding.distribution_record(**RECORD, members=MEMBERS)
    assert fields(record) == [
        b"securechat.epoch.v2",
        u64(2),
        RECORD["conversation_id"].encode(),
        u64(3),
        u64(2),
        u64(2),
        b"members",
        b"alice",
        b"0a",
        u64(3),
        b"alice",
        b"0a0a",
        hashlib.sha256(b"wrapped-for-alice").digest(),
        b"bob",
        b"0b0b",
        hashlib.sha256(b"wrapped-for-bob").digest(),
        b"carol",
        b"0c0c",
        hashlib.sha256(b"wrapped-for-carol").digest(),
        u64(0),
    ]


def test_a_member_without_a_key_is_listed_with_empty_fields():
    record = encoding.distribution_record(**RECORD, members=[("erin", "", b"")])
    assert fields(record)[10:] == [b"erin", b"", b"", u64(0)]


def test_distribution_record_commits_to_its_statements_in_digest_order():
    one = encoding.membership_statement(**STATEMENT)
    two = encoding.membership_statement(**{**STATEMENT, "subject": "erin"})
    record = encoding.distribution_record(**RECORD, members=MEMBERS, changes=[one, two])
    digests = sorted([hashlib.sha256(one).digest(), hashlib.sha256(two).digest()])
    assert fields(record)[-3:] == [u64(2), *digests]
    assert record == encoding.distribution_record(**RECORD, members=MEMBERS, changes=[two, one])
    assert record != encoding.distribution_record(**RECORD, members=MEMBERS, changes=[one])


def test_membership_statement_fields_in_order():
    assert fields(encoding.membership_statement(**STATEMENT)) == [
        b"securechat.membership.v1",
        u64(1),
        STATEMENT["conversation_id"].encode(),
        b"members",
        u64(2),
        b"add",
        b"dave",
        b"s" * 32,
        b"e" * 32,
        b"alice",
        b"0a",
        b"n" * 16,
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"action": "leave"},  # a leave names no keys and is signed by the leaver
        {"action": "leave", "subject": "alice", "subject_signing_sha256": b""},
        {"subject_encryption_sha256": b"e" * 31},
        {"nonce": b"n" * 15},
        {"roster_epoch": 0},
        {"action": "join"},
        {"conversation_id": HEADER["conversation_id"].upper()},
    ],
)
def test_malformed_membership_statements_are_refused(change):
    with pytest.raises(ValueError):
        encoding.membership_statement(**{**STATEMENT, **change})


@pytest.mark.parametrize(
    "change", [{"previous_epoch": 3}, {"roster_epoch": 0}, {"roster_epoch": 4}]
)
def test_a_record_whose_chain_link_is_impossible_is_refused(change):
    with pytest.raises(ValueError):
        encoding.distribution_record(**{**RECORD, **change}, members=MEMBERS)


def test_distribution_record_does_not_depend_on_member_order():
    records = {
        encoding.distribution_record(**RECORD, members=list(order))
        for order in itertools.permutations(MEMBERS)
    }
    assert len(records) == 1


def test_distribution_record_sorts_by_utf8_bytes_not_utf16_units():
    astral, bmp_high = "user\U00020000", "user\ufa0e"
    record = encoding.distribution_record(
        **RECORD, members=[(astral, "01", b"a"), (bmp_high, "02", b"b")]
    )
    assert fields(record)[10:16:3] == [bmp_high.encode(), astral.encode()]


@pytest.mark.parametrize("index", range(len(MEMBERS)))
def test_distribution_record_changes_if_any_wrapped_key_changes(index):
    before = encoding.distribution_record(**RECORD, members=MEMBERS)
    members = list(MEMBERS)
    username, serial, wrapped = members[index]
    members[index] = (username, serial, wrapped + b"!")
    assert encoding.distribution_record(**RECORD, members=members) != before


@pytest.mark.parametrize("index", range(len(MEMBERS)))
def test_distribution_record_changes_if_any_serial_changes(index):
    before = encoding.distribution_record(**RECORD, members=MEMBERS)
    members = list(MEMBERS)
    username, _, wrapped = members[index]
    members[index] = (username, "ff", wrapped)
    assert encoding.distribution_record(**RECORD, members=members) != before


def test_distribution_record_changes_if_a_member_is_added_or_dropped():
    before = encoding.distribution_record(**RECORD, members=MEMBERS)
    assert encoding.distribution_record(**RECORD, members=MEMBERS[:2]) != before
    more = [*MEMBERS, ("dave", "0d0d", b"wrapped-for-dave")]
    assert encoding.distribution_record(**RECORD, members=more) != before


def test_distribution_record_refuses_duplicate_usernames():
    with pytest.raises(ValueError):
        encoding.distribution_record(**RECORD, members=[*MEMBERS, ("bob", "0e0e", b"again")])


def test_distribution_record_refuses_an_unknown_key_origin():
    with pytest.raises(ValueError):
        encoding.distribution_record(**{**RECORD, "key_origin": "client"}, members=MEMBERS)


def test_distribution_record_accepts_a_str_subclass_for_key_origin():
    class Origin(str):  # what a Django TextChoices member is
        pass

    plain = encoding.distribution_record(**RECORD, members=MEMBERS)
    assert (
        encoding.distribution_record(**{**RECORD, "key_origin": Origin("members")}, members=MEMBERS)
        == plain
    )


def test_pop_challenge_fields_in_order():
    challenge = encoding.pop_challenge(
        username="alice", nonce=b"n" * 32, signing_spki=b"S", encryption_spki=b"E"
    )
    assert fields(challenge) == [b"securechat.pop.v1", b"alice", b"n" * 32, b"S", b"E"]


def test_each_encoding_starts_with_its_own_domain_tag():
    header = encoding.message_header(**HEADER)
    tags = {
        fields(header)[0],
        fields(encoding.message_signed_bytes(header=header, iv=b"", ciphertext=b""))[0],
        fields(encoding.distribution_record(**RECORD, members=MEMBERS))[0],
        fields(encoding.membership_statement(**STATEMENT))[0],
        fields(
            encoding.pop_challenge(username="a", nonce=b"", signing_spki=b"", encryption_spki=b"")
        )[0],
    }
    assert len(tags) == 5
