"""Certificate checks and pinning, against a throw-away CA made here."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from client.securechat_client.errors import TrustError
from client.securechat_client.trust import TrustStore
from cryptokit.keys import spki_der
from keys.ca import key_usage


def make_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(ca, username, *, signing=True, days=10):
    ca_key, ca_cert = ca
    subject_key = ed25519.Ed25519PrivateKey.generate()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, username)]))
        .issuer_name(ca_cert.subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(key_usage(signing=signing), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def ca():
    return make_ca()


@pytest.fixture
def store(ca):
    return TrustStore([ca[1].public_bytes(serialization.Encoding.DER)])


def test_a_certificate_from_our_ca_for_the_right_user_passes(store, ca):
    assert store.verify_certificate(issue(ca, "alice"), username="alice", kind="signing")


@pytest.mark.parametrize(
    "case",
    ["other-ca", "wrong-name", "wrong-usage", "garbage"],
)
def test_untrusted_certificates_are_refused(store, ca, case):
    der = {
        "other-ca": lambda: issue(make_ca(), "alice"),
        "wrong-name": lambda: issue(ca, "mallory"),
        "wrong-usage": lambda: issue(ca, "alice", signing=False),
        "garbage": lambda: b"not a certificate",
    }[case]()
    with pytest.raises(TrustError) as refusal:
        store.verify_certificate(der, username="alice", kind="signing")
    assert refusal.value.code == "untrusted_certificate"


def test_a_changed_key_is_refused_with_both_fingerprints_until_accepted(store, tmp_path):
    from cryptokit.fingerprints import fingerprint

    first = spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
    second = spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
    store.pin("bob", first)
    store.pin("bob", first)
    with pytest.raises(TrustError) as refusal:
        store.pin("bob", second)
    assert refusal.value.code == "key_changed"
    assert (
        fingerprint(first) in refusal.value.message and fingerprint(second) in refusal.value.message
    )
    store.accept_key_change("bob", second)
    store.pin("bob", second)


def test_pins_persist_across_sessions(ca, tmp_path):
    path = tmp_path / "pins.json"
    der = ca[1].public_bytes(serialization.Encoding.DER)
    key = spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
    TrustStore([der], pins_path=path).pin("carol", key)
    later = TrustStore([der], pins_path=path)
    with pytest.raises(TrustError):
        later.pin("carol", spki_der(ed25519.Ed25519PrivateKey.generate().public_key()))


def test_a_revoked_serial_is_refused(store):
    store.revoked = {"abc"}
    with pytest.raises(TrustError) as refusal:
        store.check_not_revoked("abc")
    assert refusal.value.code == "certificate_revoked"


def test_signing_and_encryption_keys_are_pinned_apart(store):
    signing_spki = spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
    encryption_spki = spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
    store.check_pin("bob", "signing", signing_spki)
    store.check_pin("bob", "encryption", encryption_spki)
    with pytest.raises(TrustError) as refusal:
        store.check_pin("bob", "encryption", signing_spki)
    assert refusal.value.code == "key_changed" and refusal.value.kind == "encryption"


def test_an_older_pins_file_of_signing_fingerprints_still_counts(ca, tmp_path):
    from cryptokit.fingerprints import fingerprint

    key = spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
    path = tmp_path / "pins.json"
    path.write_text(f'{{"carol": "{fingerprint(key)}"}}')
    later = TrustStore([ca[1].public_bytes(serialization.Encoding.DER)], pins_path=path)
    later.check_pin("carol", "signing", key)
    with pytest.raises(TrustError):
        later.check_pin(
            "carol", "signing", spki_der(ed25519.Ed25519PrivateKey.generate().public_key())
        )


def test_an_expired_certificate_verifies_what_it_signed_while_valid(store, ca):
    expired = issue(ca, "alice", days=-1)  # valid from two days ago until yesterday
    with pytest.raises(TrustError):
        store.verify_certificate(expired, username="alice", kind="signing")
    two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1, hours=12)
    assert store.verify_certificate(expired, username="alice", kind="signing", at=two_days_ago)
    with pytest.raises(TrustError):  # a claimed time in the future counts as now
        store.verify_certificate(
            expired, username="alice", kind="signing", at=two_days_ago + dt.timedelta(days=9)
        )
