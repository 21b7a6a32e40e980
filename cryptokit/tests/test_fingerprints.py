"""Fingerprints and safety numbers."""

import hashlib
import re

import pytest

from cryptokit.fingerprints import fingerprint, safety_number
from cryptokit.keys import spki_der

SAFETY_FORMAT = re.compile(r"\d{5}( \d{5}){5}")


@pytest.fixture(scope="module")
def spkis(signing_keys, other_signing_keys) -> dict[str, bytes]:
    return {
        "alice": spki_der(signing_keys["ed25519"].public_key()),
        "alice-new": spki_der(other_signing_keys["ed25519"].public_key()),
        "bob": spki_der(signing_keys["ecdsa-p256"].public_key()),
        "bob-new": spki_der(other_signing_keys["ecdsa-p256"].public_key()),
    }


def test_fingerprint_is_sha256_of_the_spki_in_16_uppercase_groups(spkis):
    printed = fingerprint(spkis["alice"])
    assert re.fullmatch(r"[0-9A-F]{4}( [0-9A-F]{4}){15}", printed)
    assert printed.replace(" ", "") == hashlib.sha256(spkis["alice"]).hexdigest().upper()


def test_fingerprint_accepts_a_memoryview(spkis):
    assert fingerprint(memoryview(spkis["bob"])) == fingerprint(spkis["bob"])


def test_safety_number_is_six_groups_of_five_digits(spkis):
    assert SAFETY_FORMAT.fullmatch(safety_number("alice", spkis["alice"], "bob", spkis["bob"]))


def test_safety_number_is_the_same_whichever_side_computes_it(spkis):
    alice_side = safety_number("alice", spkis["alice"], "bob", spkis["bob"])
    bob_side = safety_number("bob", spkis["bob"], "alice", spkis["alice"])
    assert alice_side == bob_side


def test_safety_number_changes_when_either_key_changes(spkis):
    before = safety_number("alice", spkis["alice"], "bob", spkis["bob"])
    assert safety_number("alice", spkis["alice"], "bob", spkis["bob-new"]) != before
    assert safety_number("alice", spkis["alice-new"], "bob", spkis["bob"]) != before


def test_safety_number_changes_when_a_username_changes(spkis):
    before = safety_number("alice", spkis["alice"], "bob", spkis["bob"])
    assert safety_number("alice", spkis["alice"], "bobby", spkis["bob"]) != before


def test_safety_number_binds_each_key_to_its_user(spkis):
    before = safety_number("alice", spkis["alice"], "bob", spkis["bob"])
    assert safety_number("alice", spkis["bob"], "bob", spkis["alice"]) != before


def test_safety_number_follows_the_documented_definition(spkis):
    # Written out step by step from the docstring: the spec a JS port follows.
    def lp(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    # "user\ufa0e" sorts first by UTF-8 bytes but second by UTF-16 units (JS's default).
    first, second = ("user\ufa0e", spkis["alice"]), ("user\U00020000", spkis["bob"])
    data = b"securechat.safety-number.v1"
    for name, spki in (first, second):
        data += lp(name.encode("utf-8")) + lp(spki)
    digest = hashlib.sha512(data).digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100000 for i in range(0, 30, 5)]
    expected = " ".join(f"{group:05d}" for group in groups)
    assert safety_number(*second, *first) == expected
    assert safety_number(*first, *second) == expected


def test_safety_number_orders_equal_usernames_by_key(spkis):
    one = safety_number("alice", spkis["alice"], "alice", spkis["alice-new"])
    assert one == safety_number("alice", spkis["alice-new"], "alice", spkis["alice"])
