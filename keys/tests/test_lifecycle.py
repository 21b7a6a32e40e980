"""Certificate lifecycle: the server signing key renews before it expires, the system
check warns and then refuses, and users renew their certificates with the same keys."""

import base64
import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
from io import StringIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from cryptokit import signing
from cryptokit.keys import spki_der
from cryptokit.pop import answer_challenge
from keys import ca as ca_module
from keys.ca import (
    PkiNotReady,
    active_ca,
    ca_certificate,
    initialize_pki,
    load_private_key,
    server_signing_certificate,
    ski_hex,
)
from keys.checks import check_pki
from keys.demo import certify_keys
from keys.models import AuditEvent, Certificate, CertificateAuthority
from keys.services import PkiError, create_challenge, keys_registered, server_signer
from testing.processes import ROOT, manage, server_env


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


def server_certificate_valid_for(validity: dt.timedelta) -> Certificate:
    """Replace the server signing key with one whose certificate (X.509 and record)
    ends `validity` from now; negative-ish values make an expired one."""
    return ca_module._issue_server_signing_key(active_ca(), validity=validity)


def ca_valid_for(validity: dt.timedelta) -> CertificateAuthority:
    """Rewrite the active CA's expiry in its record, which is what the check reads."""
    ca = active_ca()
    ca.not_after = timezone.now() + validity
    ca.save(update_fields=["not_after"])
    return ca


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def public_key_of(certificate: Certificate):
    return x509.load_der_x509_certificate(bytes(certificate.certificate_der)).public_key()


# --- the system check -------------------------------------------------------------------


def test_check_is_quiet_while_nothing_is_due(pki, settings):
    server_certificate_valid_for(days(settings.CERTIFICATE_RENEW_DAYS + 2))
    assert check_pki(None) == []


def test_check_warns_when_the_server_certificate_expires_soon(pki, settings):
    server_certificate_valid_for(days(settings.CERTIFICATE_RENEW_DAYS - 1))
    [message] = check_pki(None)
    assert isinstance(message, Warning) and not isinstance(message, Error)
    assert message.id == "keys.W001"
    assert "server signing certificate" in message.msg
    assert "`manage.py init_pki`" in message.hint and "--rotate" not in message.hint
    err = StringIO()
    call_command("check", stdout=StringIO(), stderr=err)  # warnings do not stop a start
    assert "keys.W001" in err.getvalue()


def test_check_warns_when_the_ca_expires_soon(pki, settings):
    ca_valid_for(days(settings.CERTIFICATE_RENEW_DAYS - 1))
    [message] = check_pki(None)
    assert message.id == "keys.W001" and "CA certificate" in message.msg
    assert "`manage.py init_pki --rotate`" in message.hint


def test_check_errors_once_it_has_expired(pki):
    server_certificate_valid_for(dt.timedelta(minutes=-1))
    [message] = check_pki(None)
    assert isinstance(message, Error) and message.id == "keys.E002"
    assert "server signing certificate expired" in message.msg
    assert "`manage.py init_pki`" in message.hint
    ca_valid_for(-days(1))
    assert ids(check_pki(None)) == ["keys.E002", "keys.E002"]
    with pytest.raises(SystemCheckError, match=r"keys\.E002"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


# --- the server signing key -------------------------------------------------------------


def test_init_pki_renews_an_expiring_server_certificate_and_old_records_still_verify(
    pki, client, users, settings
):
    old = server_certificate_valid_for(days(settings.CERTIFICATE_RENEW_DAYS - 1))
    record = b"a key record signed before the renewal"
    signature = signing.sign(load_private_key(ski_hex(public_key_of(old))), record)

    out = StringIO()
    call_command("init_pki", stdout=out)

    new = server_signing_certificate()
    assert new.serial != old.serial
    assert out.getvalue().strip() == f"server_key.renewed {new.serial}"
    assert new.not_after > timezone.now() + days(settings.CERTIFICATE_VALIDITY_DAYS - 1)
    assert AuditEvent.objects.filter(action="server_key.renewed", serial=new.serial).exists()
    stored = Certificate.objects.get(serial=old.serial)  # the old record, from the database
    assert stored.status == Certificate.Status.SUPERSEDED
    signing.verify(public_key_of(stored), signature, record)
    for certificate in (stored, new):
        x509.load_der_x509_certificate(
            bytes(certificate.certificate_der)
        ).verify_directly_issued_by(ca_certificate(pki))
    client.force_login(users["bob"])
    published = client.get(f"/api/keys/certificates/{old.serial}/").json()
    assert published["status"] == "superseded" and published["kind"] == "server-signing"
    assert client.get("/api/keys/ca/").json()["server_signing"]["serial"] == new.serial
    assert initialize_pki() == []  # renewed once: the new key is far from its window


def test_init_pki_leaves_a_server_certificate_outside_the_window_alone(pki, settings):
    current = server_certificate_valid_for(days(settings.CERTIFICATE_RENEW_DAYS + 1))
    assert initialize_pki() == []
    assert server_signing_certificate().serial == current.serial


def test_server_signer_renews_inside_the_window(pki, settings):
    old = server_certificate_valid_for(days(settings.CERTIFICATE_RENEW_DAYS - 1))
    serial, private_key = server_signer()
    assert serial != old.serial
    new = server_signing_certificate()
    assert new.serial == serial
    assert ski_hex(private_key.public_key()) == ski_hex(public_key_of(new))
    assert server_signer()[0] == serial  # the second call finds the renewed key
    assert AuditEvent.objects.filter(action="server_key.renewed").count() == 1
    assert Certificate.objects.get(serial=old.serial).status == Certificate.Status.SUPERSEDED


def test_server_signer_keeps_a_key_outside_the_window(pki, settings):
    current = server_certificate_valid_for(days(settings.CERTIFICATE_RENEW_DAYS + 1))
    assert server_signer()[0] == current.serial
    assert not AuditEvent.objects.filter(action="server_key.renewed").exists()


def test_an_expired_server_key_never_signs(pki, settings):
    expired = server_certificate_valid_for(dt.timedelta(minutes=-1))
    settings.CA_PASSPHRASE = "wrong"  # renewal impossible: refuse, do not fall back
    ca_module._read_private_key.cache_clear()
    with pytest.raises(PkiNotReady):
        server_signer()
    assert server_signing_certificate().serial == expired.serial
    settings.CA_PASSPHRASE = "test-ca-passphrase"
    ca_module._read_private_key.cache_clear()
    assert server_signer()[0] != expired.serial


# Each racer imports Django first, then waits for the same instant, so all of them find
# the key due before any has renewed it.
RACER = """
import os, time
from keys.services import server_signer
time.sleep(max(0.0, float(os.environ["RACE_AT"]) - time.time()))
print(server_signer()[0])
"""


def test_racing_workers_renew_the_server_key_once(tmp_path, redis_server):
    """Separate processes on one SQLite file, as daphne workers are, all finding the
    server key due at the same instant."""
    env = server_env(tmp_path, redis_server.url, CERTIFICATE_VALIDITY_DAYS="40")
    manage(env, "migrate", "--skip-checks", "-v", "0")
    manage(env, "init_pki")  # a server certificate for 40 days
    # For the racers it is due: it ends inside their 45-day window.
    racer_env = {
        **env,
        "CERTIFICATE_VALIDITY_DAYS": "365",
        "CERTIFICATE_RENEW_DAYS": "45",
        "RACE_AT": str(time.time() + 5),
    }
    racers = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", RACER],
            env=racer_env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), outputs
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        renewals = db.execute(
            "SELECT count(*) FROM keys_auditevent WHERE action = 'server_key.renewed'"
        ).fetchone()[0]
        [(active,)] = db.execute(
            "SELECT serial FROM keys_certificate WHERE kind = 'server-signing' "
            "AND status = 'active'"
        ).fetchall()
    assert renewals == 1
    assert {stdout.split()[-1] for stdout, _ in outputs} == {active}


# --- user certificates ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_keys():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def register_over_http(client, username: str, signing_key, encryption_key) -> dict:
    """challenge + register through the API; the JSON answer of register."""

    def post(path, body):
        response = client.post(
            f"/api/keys/{path}/", json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 201, response.content
        return response.json()

    keys = {
        "signing_key": b64(spki_der(signing_key.public_key())),
        "encryption_key": b64(spki_der(encryption_key.public_key())),
    }
    challenge = post("challenge", keys)
    signature, secret = answer_challenge(
        username=username,
        nonce=base64.b64decode(challenge["nonce"]),
        encrypted_secret=base64.b64decode(challenge["encrypted_secret"]),
        signing_key=signing_key,
        encryption_key=encryption_key,
    )
    return post(
        "register",
        {
            **keys,
            "challenge_id": challenge["challenge_id"],
            "signature": b64(signature),
            "secret": b64(secret),
        },
    )


@pytest.fixture
def heard():
    """What keys_registered announced (user, renewed)."""
    announcements = []

    def listener(sender, user, renewed, **kwargs):
        announcements.append((user.username, renewed))

    keys_registered.connect(listener)
    yield announcements
    keys_registered.disconnect(listener)


def epochs_of(conversation) -> int:
    from chat.models import KeyEpoch

    return KeyEpoch.objects.filter(conversation=conversation).count()


def test_renewing_with_the_same_keys_issues_new_certificates_without_rekeying(
    client, users, pki, rsa_keys, heard, django_capture_on_commit_callbacks
):
    from chat.services.conversations import create_conversation

    alice, bob = users["alice"], users["bob"]
    alice_signing = signing.generate_signing_key("ed25519")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        first = register_over_http(client, "alice", alice_signing, rsa_keys[0])
        certify_keys(bob, signing.generate_signing_key("ed25519"), rsa_keys[1])
    with django_capture_on_commit_callbacks(execute=True):
        conversation = create_conversation(alice, ["bob"], key_origin="server")
    assert first["renewed"] is False
    assert epochs_of(conversation) == 1

    with django_capture_on_commit_callbacks(execute=True):
        renewal = register_over_http(client, "alice", alice_signing, rsa_keys[0])

    assert renewal["renewed"] is True
    assert heard[-1] == ("alice", True)
    assert epochs_of(conversation) == 1  # same keys: nothing to re-key
    for kind in ("signing", "encryption"):
        assert renewal[kind]["serial"] != first[kind]["serial"]
        assert renewal[kind]["fingerprint"] == first[kind]["fingerprint"]
        old = client.get(f"/api/keys/certificates/{first[kind]['serial']}/").json()
        assert old["status"] == "superseded"
    current = client.get("/api/keys/users/alice/").json()
    assert {current[k]["serial"] for k in current} == {
        renewal["signing"]["serial"],
        renewal["encryption"]["serial"],
    }
    renewed_events = AuditEvent.objects.filter(action="certificate.renewed", subject=alice)
    assert set(renewed_events.values_list("serial", flat=True)) == {
        renewal["signing"]["serial"],
        renewal["encryption"]["serial"],
    }


def test_new_keys_are_not_a_renewal_and_still_rekey(
    users, pki, rsa_keys, heard, django_capture_on_commit_callbacks
):
    """The counterpart of the test above: it proves the epoch count can move."""
    from chat.services.conversations import create_conversation

    alice, bob = users["alice"], users["bob"]
    alice_signing = signing.generate_signing_key("ed25519")
    with django_capture_on_commit_callbacks(execute=True):
        certify_keys(alice, alice_signing, rsa_keys[0])
        certify_keys(bob, signing.generate_signing_key("ed25519"), rsa_keys[1])
    with django_capture_on_commit_callbacks(execute=True):
        conversation = create_conversation(alice, ["bob"], key_origin="server")
    assert epochs_of(conversation) == 1
    with django_capture_on_commit_callbacks(execute=True):
        # the same encryption key with a new signing key is a key change, not a renewal
        changed = certify_keys(alice, signing.generate_signing_key("ed25519"), rsa_keys[0])
    assert changed.renewed is False and heard[-1] == ("alice", False)
    assert epochs_of(conversation) == 2
    assert not AuditEvent.objects.filter(action="certificate.renewed").exists()


def test_an_expired_pair_registered_again_is_not_a_renewal(users, pki, rsa_keys):
    alice = users["alice"]
    alice_signing = signing.generate_signing_key("ed25519")
    certify_keys(alice, alice_signing, rsa_keys[0])
    # Epochs made while the pair was expired left alice out: she needs the re-key.
    Certificate.objects.filter(owner=alice).update(not_after=timezone.now() - days(1))
    assert certify_keys(alice, alice_signing, rsa_keys[0]).renewed is False


def test_a_renewal_still_refuses_another_users_keys(users, pki, rsa_keys):
    alice, bob = users["alice"], users["bob"]
    alice_signing = signing.generate_signing_key("ed25519")
    certify_keys(alice, alice_signing, rsa_keys[0])
    assert certify_keys(alice, alice_signing, rsa_keys[0]).renewed is True
    bob_signing = signing.generate_signing_key("ed25519")
    for signing_key, encryption_key in [
        (alice_signing, rsa_keys[0]),  # alice's whole pair
        (bob_signing, rsa_keys[0]),  # her encryption key
        (alice_signing, rsa_keys[1]),  # her signing key
    ]:
        with pytest.raises(PkiError) as refusal:
            create_challenge(
                bob, spki_der(signing_key.public_key()), spki_der(encryption_key.public_key())
            )
        assert refusal.value.code == "key_reused"
    assert not Certificate.objects.filter(owner=bob).exists()
