"""The browser's crypto core, checked by Python: what `frontend/scripts/js_vectors.mjs`
makes with the JavaScript modules (keys, encodings, signatures of all four algorithms,
keys wrapped to a Python RSA key, AES-GCM ciphertexts, a members-origin record applying a
membership statement, a proof of possession) must pass cryptokit's checks and the Python
client's, and a changed byte must not. The other direction, Python-made material checked
by the JavaScript, is `frontend/test/*.test.js`.

Node is required: without it this test fails (it is the only check that the two
implementations agree in this direction), it never skips.
"""

import base64
import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from client.securechat_client.conversation import ConversationState, EpochView, decode_body
from client.securechat_client.errors import TrustError
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.keys import (
    SIGNING_ALGORITHMS,
    inspect_encryption_key,
    inspect_signing_key,
    load_public_key,
    spki_der,
)
from cryptokit.membership import Statement, next_members, roster_after

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
SCRIPT = FRONTEND / "scripts" / "js_vectors.mjs"
PYTHON_MEMBER = "python"  # the member whose key (this test's RSA key) the script wraps to


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


@pytest.fixture(scope="module")
def js_vectors(encryption_key, dsa_parameters) -> dict:
    """Run the JS generator once with this test's RSA key and DSA parameters."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the JS interop check needs Node 20+ on PATH")
    if not (FRONTEND / "node_modules").is_dir():
        pytest.fail("frontend/node_modules is missing: run `npm ci` in frontend/ first")
    numbers = dsa_parameters.parameter_numbers()
    parameters = {"p": f"{numbers.p:x}", "q": f"{numbers.q:x}", "g": f"{numbers.g:x}"}
    spki = base64.b64encode(spki_der(encryption_key.public_key())).decode()
    result = subprocess.run(
        [node, str(SCRIPT), spki, json.dumps(parameters)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=FRONTEND,
    )
    if result.returncode != 0:
        pytest.fail(f"js_vectors.mjs failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


@pytest.fixture(params=SIGNING_ALGORITHMS)
def made(request, js_vectors) -> dict:
    """The material one JS key of one algorithm made."""
    (entry,) = [e for e in js_vectors["algorithms"] if e["algorithm"] == request.param]
    return entry


def _statement(made: dict) -> Statement:
    (data,) = made["record"]["changes"]
    return Statement.from_json(data)


def _record_bytes(record: dict, statements: list[Statement]) -> bytes:
    return encoding.distribution_record(
        conversation_id=record["conversation"],
        epoch=record["epoch"],
        previous_epoch=record["previous_epoch"],
        roster_epoch=record["roster_epoch"],
        key_origin=record["key_origin"],
        signer=record["signer"],
        signer_serial=record["signer_serial"],
        members=[
            (m["username"], m["serial"], unb64(m["wrapped_key"]) if m["serial"] else b"")
            for m in record["members"]
        ],
        changes=[s.signed_bytes(record["conversation"]) for s in statements],
    )


def _message(made: dict, order: int = 1) -> dict:
    """The JS message as the server would relay it."""
    header = made["message"]["header_input"]
    return {
        "conversation": header["conversation_id"],
        "order": order,
        "epoch": header["epoch"],
        "sender": header["sender"],
        "sender_serial": header["sender_serial"],
        "device": header["device"],
        "sequence": header["sequence"],
        "timestamp_ms": header["timestamp_ms"],
        "iv": made["message"]["iv"],
        "ciphertext": made["message"]["ciphertext"],
        "signature": made["message"]["signature"],
    }


def test_js_generates_every_signing_algorithm(js_vectors):
    assert [e["algorithm"] for e in js_vectors["algorithms"]] == list(SIGNING_ALGORITHMS)


def test_js_signing_key_passes_the_key_policy_in_canonical_der(made):
    info = inspect_signing_key(unb64(made["spki"]))
    assert info.algorithm == made["algorithm"]


def test_js_encryption_key_passes_the_key_policy(js_vectors):
    assert inspect_encryption_key(unb64(js_vectors["encryption_spki"])).key_size == 2048


def test_js_message_header_is_the_python_encoding(made):
    header = encoding.message_header(**made["message"]["header_input"])
    assert header == unb64(made["message"]["header"])


def test_js_message_signature_verifies(made):
    data = encoding.message_signed_bytes(
        header=unb64(made["message"]["header"]),
        iv=unb64(made["message"]["iv"]),
        ciphertext=unb64(made["message"]["ciphertext"]),
    )
    signing.verify(unb64(made["spki"]), unb64(made["message"]["signature"]), data)


def test_js_wrapped_epoch_key_opens_and_decrypts_the_js_message(made, encryption_key):
    (mine,) = [m for m in made["record"]["members"] if m["username"] == PYTHON_MEMBER]
    key = wrapping.oaep_decrypt(encryption_key, unb64(mine["wrapped_key"]))
    assert len(key) == wrapping.KEY_BYTES
    plaintext = wrapping.aes_gcm_decrypt(
        key,
        unb64(made["message"]["iv"]),
        unb64(made["message"]["ciphertext"]),
        unb64(made["message"]["header"]),
    )
    assert decode_body(plaintext) == made["message"]["text"]


def test_js_membership_statement_verifies_and_names_the_python_keys(made, encryption_key):
    statement = _statement(made)
    record = made["record"]
    signing.verify(
        unb64(made["spki"]), statement.signature, statement.signed_bytes(record["conversation"])
    )
    spki_hash = hashlib.sha256(spki_der(encryption_key.public_key())).digest()
    assert (statement.subject_signing_sha256, statement.subject_encryption_sha256) == (
        spki_hash,
        spki_hash,
    )
    assert (statement.action, statement.subject, statement.actor) == ("add", PYTHON_MEMBER, "alice")


def test_js_record_verifies_and_follows_the_membership_rule(made):
    record = made["record"]
    statement = _statement(made)
    data = _record_bytes(record, [statement])
    signing.verify(unb64(made["spki"]), unb64(record["signature"]), data)
    members = next_members(
        frozenset(record["previous_members"]),
        owner="alice",
        roster_epoch=statement.roster_epoch,
        statements=[statement],
    )
    assert members == {m["username"] for m in record["members"]}
    assert record["roster_epoch"] == roster_after(2, 1, changes_members=True)


def test_python_client_accepts_the_js_record_and_opens_the_js_message(made, encryption_key):
    """The Python reference client, given the chain up to epoch 1, takes the JS-made
    epoch 2 with every rule of protocol.md §5.5 and decrypts the JS-made message in it."""
    record = made["record"]
    state = ConversationState(record["conversation"], key_origin="members", owner="alice")
    state.epochs[1] = EpochView(
        number=1, previous=0, roster=1, signer="alice", members=frozenset({"alice", "bob"})
    )
    signer_key = load_public_key(unb64(made["spki"]))
    state.accept_epoch(
        record,
        me=PYTHON_MEMBER,
        my_encryption_key=encryption_key,
        signer_public_key=signer_key,
        signer_is_server=False,
        statements=[_statement(made)],
    )
    assert state.epochs[2].members == {"alice", "bob", PYTHON_MEMBER}
    opened = state.decrypt(_message(made), sender_public_key=signer_key)
    assert (opened.sender, opened.text) == ("alice", made["message"]["text"])


def test_js_proof_of_possession_verifies(made, js_vectors):
    pop = made["pop"]
    data = encoding.pop_challenge(
        username=pop["username"],
        nonce=unb64(pop["nonce"]),
        signing_spki=unb64(made["spki"]),
        encryption_spki=unb64(js_vectors["encryption_spki"]),
    )
    signing.verify(unb64(made["spki"]), unb64(pop["signature"]), data)


def test_a_changed_byte_fails_every_check(made, js_vectors, encryption_key):
    """The checks above can fail: each signature with a flipped byte is refused, and so
    are a flipped ciphertext, a flipped wrapped key and a record naming another member."""
    spki = unb64(made["spki"])
    message = made["message"]
    header, iv = unb64(message["header"]), unb64(message["iv"])
    ciphertext = unb64(message["ciphertext"])
    signed = encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext)
    with pytest.raises(CryptoError) as refused:
        signing.verify(spki, flip_last(unb64(message["signature"])), signed)
    assert refused.value.code == "bad_signature"
    with pytest.raises(CryptoError):
        signing.verify(spki, unb64(message["signature"]), flip_last(signed))

    record = made["record"]
    statement = _statement(made)
    with pytest.raises(CryptoError):
        signing.verify(
            spki, flip_last(statement.signature), statement.signed_bytes(record["conversation"])
        )
    forged = copy.deepcopy(record)
    forged["members"][2]["username"] = "mallory"
    with pytest.raises(CryptoError):
        signing.verify(spki, unb64(record["signature"]), _record_bytes(forged, [statement]))

    pop = made["pop"]
    challenge = encoding.pop_challenge(
        username="mallory",
        nonce=unb64(pop["nonce"]),
        signing_spki=spki,
        encryption_spki=unb64(js_vectors["encryption_spki"]),
    )
    with pytest.raises(CryptoError):
        signing.verify(spki, unb64(pop["signature"]), challenge)

    (mine,) = [m for m in record["members"] if m["username"] == PYTHON_MEMBER]
    with pytest.raises(CryptoError) as unwrap:
        wrapping.oaep_decrypt(encryption_key, flip_last(unb64(mine["wrapped_key"])))
    assert unwrap.value.code == "unwrap_failed"
    key = wrapping.oaep_decrypt(encryption_key, unb64(mine["wrapped_key"]))
    with pytest.raises(CryptoError) as tampered:
        wrapping.aes_gcm_decrypt(key, iv, flip_last(ciphertext), header)
    assert tampered.value.code == "decrypt_failed"


def test_python_client_refuses_a_js_record_that_adds_someone_unsigned(made, encryption_key):
    """Without the statement, the same JS record adds a member nobody added."""
    record = made["record"]
    state = ConversationState(record["conversation"], key_origin="members", owner="alice")
    state.epochs[1] = EpochView(
        number=1, previous=0, roster=1, signer="alice", members=frozenset({"alice", "bob"})
    )
    with pytest.raises(TrustError) as refused:
        state.accept_epoch(
            record,
            me=PYTHON_MEMBER,
            my_encryption_key=encryption_key,
            signer_public_key=load_public_key(unb64(made["spki"])),
            signer_is_server=False,
            statements=[],
        )
    assert refused.value.code == "bad_distribution"  # the signature covers the statement
