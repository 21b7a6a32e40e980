import base64
import json

import pytest
from cryptography import x509

from keys.ca import ca_certificate
from keys.demo import certify_new_keys
from keys.models import AuditEvent, Certificate
from keys.services import PkiError, certificate_revoked, require_usable_certificate


@pytest.fixture
def alice_keys(users, pki):
    return certify_new_keys(users["alice"], "ed25519", rsa_bits=2048)


def test_a_revoked_certificate_is_listed_and_refused(client, users, alice_keys, pki):
    _, _, signing_cert, encryption_cert = alice_keys
    client.force_login(users["alice"])
    response = client.post(
        "/api/keys/revoke/", json.dumps({"reason": "lost laptop"}), content_type="application/json"
    )
    assert response.status_code == 200
    assert set(response.json()["revoked"]) == {signing_cert.serial, encryption_cert.serial}
    listed = client.get("/api/keys/revocations/").json()["revoked"]
    assert {entry["serial"] for entry in listed} == {signing_cert.serial, encryption_cert.serial}
    crl = x509.load_der_x509_crl(client.get("/api/keys/crl/").content)
    assert crl.is_signature_valid(ca_certificate(pki).public_key())
    assert crl.get_revoked_certificate_by_serial_number(int(signing_cert.serial, 16)) is not None
    with pytest.raises(PkiError) as refusal:
        require_usable_certificate(signing_cert.serial, kind="signing", owner=users["alice"])
    assert refusal.value.code == "certificate_revoked"
    assert (
        client.get(f"/api/keys/certificates/{signing_cert.serial}/").json()["status"] == "revoked"
    )
    assert AuditEvent.objects.filter(action="certificate.revoked").count() == 2


def test_a_usable_certificate_passes_and_a_wrong_kind_or_owner_does_not(users, alice_keys):
    _, _, signing_cert, encryption_cert = alice_keys
    assert require_usable_certificate(signing_cert.serial, kind="signing", owner=users["alice"])
    for serial, kind, owner in [
        (encryption_cert.serial, "signing", users["alice"]),
        (signing_cert.serial, "signing", users["bob"]),
    ]:
        with pytest.raises(PkiError) as refusal:
            require_usable_certificate(serial, kind=kind, owner=owner)
        assert refusal.value.code == "wrong_certificate"


def test_revocation_is_announced_after_commit(
    client, users, alice_keys, django_capture_on_commit_callbacks
):
    heard = []

    def listener(sender, certificate, reason, **kwargs):
        heard.append((certificate.serial, reason))

    certificate_revoked.connect(listener)
    try:
        client.force_login(users["alice"])
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            client.post(
                "/api/keys/revoke/", json.dumps({"reason": "lost"}), content_type="application/json"
            )
        assert heard == []  # nothing before the commit
        for callback in callbacks:
            callback()
        assert {serial for serial, _ in heard} == {alice_keys[2].serial, alice_keys[3].serial}
    finally:
        certificate_revoked.disconnect(listener)


def test_an_admin_revokes_with_a_reason(client, users, alice_keys):
    from accounts.models import User

    admin = User.objects.create_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    signing_cert = alice_keys[2]
    data = {"action": "revoke_selected", "_selected_action": [signing_cert.pk]}
    confirm = client.post("/admin/keys/certificate/", data)
    assert confirm.status_code == 200 and b"reason" in confirm.content
    client.post("/admin/keys/certificate/", {**data, "reason": "compromised"})
    signing_cert.refresh_from_db()
    assert signing_cert.status == "revoked" and signing_cert.revocation_reason == "compromised"
    event = AuditEvent.objects.get(action="certificate.revoked", serial=signing_cert.serial)
    assert event.actor == admin


def test_the_admin_shows_fingerprints_and_no_private_material(client, users, alice_keys):
    from accounts.models import User
    from cryptokit.fingerprints import fingerprint

    admin = User.objects.create_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    certificate = alice_keys[2]
    page = client.get(f"/admin/keys/certificate/{certificate.pk}/change/").content.decode()
    assert fingerprint(bytes(certificate.spki_der)) in page
    assert "PRIVATE KEY" not in page
    listing = client.get("/admin/keys/certificate/?status__exact=active").content.decode()
    assert certificate.serial[:16] in listing


def test_charlie_cannot_use_the_certificate_admin(client, users, alice_keys):
    client.force_login(users["charlie"])
    assert client.get("/admin/keys/certificate/").status_code == 302
    client.post(
        "/admin/keys/certificate/",
        {"action": "revoke_selected", "_selected_action": [alice_keys[2].pk], "reason": "x"},
    )
    assert Certificate.objects.get(pk=alice_keys[2].pk).status == "active"


def put_backup(client, blob: bytes, version: int):
    body = {"blob": base64.b64encode(blob).decode(), "version": version}
    return client.put("/api/keys/backup/", json.dumps(body), content_type="application/json")


def test_only_the_owner_reads_and_replaces_a_key_backup(client, users, pki):
    client.force_login(users["alice"])
    assert put_backup(client, b"alice-ciphertext", 1).status_code == 200
    client.force_login(users["charlie"])
    assert client.get("/api/keys/backup/").json()["code"] == "no_backup"
    assert put_backup(client, b"charlie-overwrite", 1).status_code == 200  # his own, not hers
    client.force_login(users["alice"])
    stored = client.get("/api/keys/backup/").json()
    assert base64.b64decode(stored["blob"]) == b"alice-ciphertext" and stored["version"] == 1


def test_a_backup_needs_the_next_version_and_a_bounded_size(client, users, pki, settings):
    client.force_login(users["alice"])
    assert put_backup(client, b"v1", 1).status_code == 200
    stale = put_backup(client, b"stale", 1)
    assert stale.status_code == 409 and stale.json()["code"] == "backup_version_conflict"
    settings.KEY_BACKUP_MAX_BYTES = 10
    assert put_backup(client, b"x" * 11, 2).json()["code"] == "backup_size"
    assert put_backup(client, b"v2", 2).status_code == 200
    assert base64.b64decode(client.get("/api/keys/backup/").json()["blob"]) == b"v2"


def test_revoked_keys_cannot_be_certified_again(users, alice_keys):
    from keys.demo import certify_keys
    from keys.services import revoke_own_keys

    signing_key, encryption_key, _, _ = alice_keys
    revoke_own_keys(users["alice"], "lost laptop")
    with pytest.raises(PkiError) as refusal:
        certify_keys(users["alice"], signing_key, encryption_key)
    assert refusal.value.code == "key_revoked"
    assert not Certificate.objects.filter(owner=users["alice"], status="active").exists()
