"""The shared JSON vectors: the code must still produce and accept exactly them."""

import json

import pytest

from cryptokit import encoding, signing
from cryptokit.errors import CryptoError
from cryptokit.fingerprints import fingerprint, safety_number
from cryptokit.keys import SIGNING_ALGORITHMS, inspect_signing_key
from cryptokit.vectors import generate

ENCODING = generate.load("encoding")
SAFETY = generate.load("safety_numbers")
SIGNATURES = generate.load("signatures")


def _cases(function: str) -> list:
    return [pytest.param(case, id=case["name"]) for case in ENCODING[function]]


@pytest.mark.parametrize("case", _cases("message_header"))
def test_message_header_vectors(case):
    assert encoding.message_header(**case["input"]).hex() == case["hex"]


@pytest.mark.parametrize("case", _cases("message_signed_bytes"))
def test_message_signed_bytes_vectors(case):
    data = {key: bytes.fromhex(value) for key, value in case["input"].items()}
    assert encoding.message_signed_bytes(**data).hex() == case["hex"]


@pytest.mark.parametrize("case", _cases("distribution_record"))
def test_distribution_record_vectors(case):
    data = dict(case["input"])
    data["members"] = [(u, s, bytes.fromhex(w)) for u, s, w in data["members"]]
    data["changes"] = [bytes.fromhex(c) for c in data["changes"]]
    assert encoding.distribution_record(**data).hex() == case["hex"]
    data["members"].reverse()
    data["changes"].reverse()
    assert encoding.distribution_record(**data).hex() == case["hex"]


@pytest.mark.parametrize("case", _cases("membership_statement"))
def test_membership_statement_vectors(case):
    assert generate.statement_from(case["input"]).hex() == case["hex"]


def test_a_record_vector_commits_to_the_statements_it_applies():
    applying = ENCODING["distribution_record"][3]
    assert applying["input"]["changes"] == [
        ENCODING["membership_statement"][0]["hex"],
        ENCODING["membership_statement"][2]["hex"],
    ]
    data = dict(applying["input"], changes=applying["input"]["changes"][:1])
    assert generate.record_from(data).hex() != applying["hex"]


@pytest.mark.parametrize("case", _cases("pop_challenge"))
def test_pop_challenge_vectors(case):
    data = case["input"]
    assert (
        encoding.pop_challenge(
            username=data["username"],
            nonce=bytes.fromhex(data["nonce"]),
            signing_spki=bytes.fromhex(data["signing_spki"]),
            encryption_spki=bytes.fromhex(data["encryption_spki"]),
        ).hex()
        == case["hex"]
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c["why"]) for c in ENCODING["refused"]])
def test_refused_encoding_vectors_raise(case):
    with pytest.raises((ValueError, TypeError)):
        generate.BUILDERS[case["function"]](case["input"])


@pytest.mark.parametrize("case", SAFETY["fingerprints"])
def test_fingerprint_vectors(case):
    assert fingerprint(bytes.fromhex(case["spki"])) == case["fingerprint"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in SAFETY["safety_numbers"]])
def test_safety_number_vectors_from_both_sides(case):
    a = (case["user_a"], bytes.fromhex(case["spki_a"]))
    b = (case["user_b"], bytes.fromhex(case["spki_b"]))
    assert safety_number(*a, *b) == case["number"]
    assert safety_number(*b, *a) == case["number"]


def test_safety_number_vectors_include_key_changes():
    numbers = {case["name"]: case["number"] for case in SAFETY["safety_numbers"]}
    assert numbers["bob's key changed"] != numbers["alice and bob"]
    assert numbers["alice's key changed"] != numbers["alice and bob"]
    assert numbers["same pair, bob computing (arguments swapped)"] == numbers["alice and bob"]


def _signature_cases(valid: bool) -> list:
    return [
        pytest.param(entry["algorithm"], entry["spki"], case, id=f"{entry['algorithm']}-{i}")
        for entry in SIGNATURES["keys"]
        for i, case in enumerate(entry["cases"])
        if case["valid"] is valid
    ]


@pytest.mark.parametrize(("algorithm", "spki", "case"), _signature_cases(True))
def test_valid_signature_vectors_verify(algorithm, spki, case):
    assert inspect_signing_key(bytes.fromhex(spki)).algorithm == algorithm
    signing.verify(
        bytes.fromhex(spki), bytes.fromhex(case["signature"]), bytes.fromhex(case["message"])
    )


@pytest.mark.parametrize(("algorithm", "spki", "case"), _signature_cases(False))
def test_invalid_signature_vectors_are_refused(algorithm, spki, case):
    with pytest.raises(CryptoError) as caught:
        signing.verify(
            bytes.fromhex(spki), bytes.fromhex(case["signature"]), bytes.fromhex(case["message"])
        )
    assert caught.value.code == "bad_signature"


def test_signature_vectors_cover_every_algorithm_with_public_keys_only():
    assert [entry["algorithm"] for entry in SIGNATURES["keys"]] == list(SIGNING_ALGORITHMS)
    for entry in SIGNATURES["keys"]:
        assert set(entry) == {"algorithm", "spki", "cases"}
        assert any(case["valid"] for case in entry["cases"])
        assert any(not case["valid"] for case in entry["cases"])
    assert "PRIVATE" not in json.dumps(SIGNATURES).upper()


def test_generator_reproduces_the_deterministic_files():
    # Editing the generator without regenerating (or the JSON by hand) fails here.
    spkis = {e["algorithm"]: bytes.fromhex(e["spki"]) for e in SIGNATURES["keys"]}
    assert generate.encoding_vectors() == ENCODING
    assert generate.safety_vectors(spkis) == SAFETY
