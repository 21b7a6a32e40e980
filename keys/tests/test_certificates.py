"""Registration with proof of possession, for every signing algorithm, through the API."""

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from cryptokit import signing
from cryptokit.keys import spki_der
from cryptokit.pop import answer_challenge
from keys.ca import ca_certificate, current_dsa_parameters
from keys.models import AuditEvent, Certificate

ALGORITHMS = ["ed25519", "ecdsa-p256", "rsa-pss", "dsa"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post(client, path, body):
    return client.post(f"/api/keys/{path}/", json.dumps(body), content_type="application/json")


@pytest.fixture(scope="session")
def encryption_keys():
    """RSA keys are slow to make: a few, shared by the session."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]


def make_signing_key(algorithm):
    parameters = current_dsa_parameters() if algorithm == "dsa" else None
    return signing.generate_signing_key(algorithm, dsa_parameters=parameters, rsa_bits=2048)


def request_challenge(client, signing_key, encryption_key):
    return post(
        client,
        "challenge",
        {
            "signing_key": b64(spki_der(signing_key.public_key())),
            "encryption_key": b64(spki_der(encryption_key.public_key())),
        },
    )


def register(client, username, signing_key, encryption_key, *, tamper=None):
    """Run the whole proof of possession; `tamper(body)` may spoil the answer."""
    challenge = request_challenge(client, signing_key, encryption_key).json()
    signature, secret = answer_challenge(
        username=username,
        nonce=base64.b64decode(challenge["nonce"]),
        encrypted_secret=base64.b64decode(challenge["encrypted_secret"]),
        signing_key=signing_key,
        encryption_key=encryption_key,
    )
    body = {
        "challenge_id": challenge["challenge_id"],
        "signing_key": b64(spki_der(signing_key.public_key())),
        "encryption_key": b64(spki_der(encryption_key.public_key())),
        "signature": b64(signature),
        "secret": b64(secret),
    }
    if tamper:
        tamper(body)
    return post(client, "register", body), body


@pytest.fixture
def alice_client(client, users, pki):
    client.force_login(users["alice"])
    return client


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_signing_algorithm_registers_and_its_certificate_verifies(
    alice_client, pki, users, encryption_keys, algorithm
):
    signing_key = make_signing_key(algorithm)
    response, _ = register(alice_client, "alice", signing_key, encryption_keys[0])
    assert response.status_code == 201, response.content
    issued = response.json()
    ca = ca_certificate(pki)
    for kind, private_key in (("signing", signing_key), ("encryption", encryption_keys[0])):
        certificate = x509.load_der_x509_certificate(base64.b64decode(issued[kind]["certificate"]))
        certificate.verify_directly_issued_by(ca)
        assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
        user_id = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value
        assert user_id == str(users["alice"].pk)
        assert spki_der(certificate.public_key()) == spki_der(private_key.public_key())
        usage = certificate.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
        assert usage.digital_signature is (kind == "signing")
        assert usage.key_encipherment is (kind == "encryption")
        aki = certificate.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        assert aki.value.key_identifier.hex() == pki.subject_key_id
        lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        assert 365 <= lifetime.days <= 366
    assert issued["signing"]["algorithm"] == algorithm
    certified = x509.load_der_x509_certificate(base64.b64decode(issued["signing"]["certificate"]))
    message = b"hello from alice"
    signing.verify(certified.public_key(), signing.sign(signing_key, message), message)
    assert (
        AuditEvent.objects.filter(action="certificate.issued", subject=users["alice"]).count() == 2
    )


def refused(response, code):
    assert response.status_code >= 400, response.content
    assert response.json()["code"] == code
    return True


def assert_nothing_issued(users):
    assert not Certificate.objects.filter(owner=users["alice"]).exists()


def test_a_signature_over_another_nonce_is_refused(alice_client, users, encryption_keys):
    key = make_signing_key("ed25519")

    def wrong_nonce(body):
        data = b"securechat.pop.v1 but some other nonce"
        body["signature"] = b64(signing.sign(key, data))

    response, _ = register(alice_client, "alice", key, encryption_keys[0], tamper=wrong_nonce)
    assert refused(response, "pop_signature_invalid")
    assert_nothing_issued(users)


def test_a_replayed_challenge_is_refused(alice_client, users, encryption_keys):
    key = make_signing_key("ed25519")
    response, body = register(alice_client, "alice", key, encryption_keys[0])
    assert response.status_code == 201
    Certificate.objects.all().delete()
    assert refused(post(alice_client, "register", body), "challenge_invalid")
    assert_nothing_issued(users)


def test_a_signature_by_another_key_is_refused(alice_client, users, encryption_keys):
    key, other = make_signing_key("ecdsa-p256"), make_signing_key("ecdsa-p256")
    challenge = request_challenge(alice_client, key, encryption_keys[0]).json()
    signature, secret = answer_challenge(
        username="alice",
        nonce=base64.b64decode(challenge["nonce"]),
        encrypted_secret=base64.b64decode(challenge["encrypted_secret"]),
        signing_key=other,
        encryption_key=encryption_keys[0],
    )
    response = post(
        alice_client,
        "register",
        {
            "challenge_id": challenge["challenge_id"],
            "signing_key": b64(spki_der(key.public_key())),
            "encryption_key": b64(spki_der(encryption_keys[0].public_key())),
            "signature": b64(signature),
            "secret": b64(secret),
        },
    )
    assert refused(response, "pop_signature_invalid")
    assert_nothing_issued(users)


def test_a_wrong_decrypted_challenge_is_refused(alice_client, users, encryption_keys):
    def wrong_secret(body):
        body["secret"] = b64(b"\x00" * 32)

    key = make_signing_key("ed25519")
    response, _ = register(alice_client, "alice", key, encryption_keys[0], tamper=wrong_secret)
    assert refused(response, "pop_decryption_invalid")
    assert_nothing_issued(users)


def test_keys_swapped_after_the_challenge_are_refused(alice_client, users, encryption_keys):
    key, other = make_signing_key("ed25519"), make_signing_key("ed25519")

    def swap(body):
        body["signing_key"] = b64(spki_der(other.public_key()))

    response, _ = register(alice_client, "alice", key, encryption_keys[0], tamper=swap)
    assert refused(response, "challenge_mismatch")
    assert_nothing_issued(users)


@pytest.mark.parametrize(
    ("make_signing", "make_encryption", "code"),
    [
        (
            lambda: make_signing_key("ed25519"),
            lambda: rsa.generate_private_key(65537, 1024),
            "key_too_small",
        ),
        (lambda: rsa.generate_private_key(65537, 1024), lambda: None, "key_too_small"),
        (lambda: dsa.generate_private_key(1024), lambda: None, "key_too_small"),
        (
            lambda: make_signing_key("ed25519"),
            lambda: make_signing_key("ed25519"),
            "unsupported_key",
        ),
    ],
    ids=["rsa-1024-encryption", "rsa-1024-signing", "dsa-1024", "ed25519-as-encryption"],
)
def test_weak_or_wrong_keys_are_refused(
    alice_client, users, encryption_keys, make_signing, make_encryption, code
):
    encryption_key = make_encryption() or encryption_keys[0]
    assert refused(request_challenge(alice_client, make_signing(), encryption_key), code)
    assert_nothing_issued(users)


def test_garbage_der_is_refused(alice_client, users, encryption_keys):
    body = {
        "signing_key": b64(b"\x30\x03garbage"),
        "encryption_key": b64(spki_der(encryption_keys[0].public_key())),
    }
    assert refused(post(alice_client, "challenge", body), "malformed_key")
    body["signing_key"] = "not base64!"
    assert refused(post(alice_client, "challenge", body), "invalid_request")
    assert_nothing_issued(users)


def test_a_key_certified_for_someone_else_is_refused(client, users, pki, encryption_keys):
    key = make_signing_key("ed25519")
    client.force_login(users["alice"])
    assert register(client, "alice", key, encryption_keys[0])[0].status_code == 201
    client.force_login(users["bob"])
    assert refused(request_challenge(client, key, encryption_keys[1]), "key_reused")
    assert not Certificate.objects.filter(owner=users["bob"]).exists()


def test_an_expired_challenge_is_refused(alice_client, users, encryption_keys, settings):
    settings.POP_CHALLENGE_TTL_SECONDS = -1
    key = make_signing_key("ed25519")
    response, _ = register(alice_client, "alice", key, encryption_keys[0])
    assert refused(response, "challenge_expired")
    assert_nothing_issued(users)


def test_registration_requires_login_and_csrf(users, pki, encryption_keys):
    from django.test import Client

    anonymous = Client()
    assert refused(
        request_challenge(anonymous, make_signing_key("ed25519"), encryption_keys[0]),
        "not_authenticated",
    )
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(users["alice"])
    assert (
        request_challenge(strict, make_signing_key("ed25519"), encryption_keys[0]).status_code
        == 403
    )


def test_rotation_supersedes_the_old_pair_which_stays_readable(
    alice_client, users, encryption_keys
):
    first, _ = register(alice_client, "alice", make_signing_key("ed25519"), encryption_keys[0])
    second, _ = register(alice_client, "alice", make_signing_key("rsa-pss"), encryption_keys[1])
    old_serial = first.json()["signing"]["serial"]
    old = alice_client.get(f"/api/keys/certificates/{old_serial}/").json()
    assert old["status"] == "superseded"
    current = alice_client.get("/api/keys/users/alice/").json()
    assert current["signing"]["serial"] == second.json()["signing"]["serial"]
    assert current["signing"]["algorithm"] == "rsa-pss"
    assert AuditEvent.objects.filter(action="certificate.superseded", serial=old_serial).exists()


def test_a_wrong_answer_burns_the_challenge(alice_client, users, encryption_keys):
    key = make_signing_key("ed25519")
    original = {}

    def wrong_secret(body):
        original.update(body)
        body["secret"] = b64(b"\x00" * 32)

    response, _ = register(alice_client, "alice", key, encryption_keys[0], tamper=wrong_secret)
    assert refused(response, "pop_decryption_invalid")
    assert refused(post(alice_client, "register", original), "challenge_invalid")
    assert_nothing_issued(users)
