import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from keys import ca as ca_module
from keys.ca import PkiNotReady, active_ca, ca_certificate, initialize_pki, load_private_key
from keys.demo import certify_new_keys
from keys.models import AuditEvent, CertificateAuthority
from testing.processes import ROOT, server_env


def test_the_ca_private_key_on_disk_is_encrypted(pki):
    data = (Path(settings.PKI_DIR) / f"{pki.subject_key_id}.key.pem").read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (Path(settings.PKI_DIR) / f"{pki.subject_key_id}.key.pem").stat().st_mode & 0o077 == 0


def test_a_wrong_passphrase_fails_with_a_clear_message(pki, settings):
    settings.CA_PASSPHRASE = "not-the-passphrase"
    ca_module._read_private_key.cache_clear()
    with pytest.raises(PkiNotReady, match="SECURECHAT_CA_PASSPHRASE is wrong"):
        load_private_key(pki.subject_key_id)


def test_no_passphrase_fails_with_a_clear_message(pki, settings):
    settings.CA_PASSPHRASE = None
    with pytest.raises(PkiNotReady, match="SECURECHAT_CA_PASSPHRASE is not set"):
        load_private_key(pki.subject_key_id)


def test_init_pki_is_idempotent(pki):
    assert initialize_pki() == []
    assert CertificateAuthority.objects.count() == 1
    assert AuditEvent.objects.filter(action="ca.created").count() == 1


def test_rotation_makes_a_new_ca_and_old_certificates_still_verify(pki, users):
    _, _, old_cert, _ = certify_new_keys(users["alice"], "ed25519", rsa_bits=2048)
    call_command("init_pki", "--rotate")
    new = active_ca()
    assert new.pk != pki.pk
    pki.refresh_from_db()
    assert pki.status == "retired"
    from cryptography import x509

    certificate = x509.load_der_x509_certificate(bytes(old_cert.certificate_der))
    certificate.verify_directly_issued_by(ca_certificate(pki))
    _, _, new_cert, _ = certify_new_keys(users["bob"], "ed25519", rsa_bits=2048)
    assert new_cert.issuer_id == new.pk
    assert AuditEvent.objects.filter(action="ca.rotated").exists()


def test_the_ca_endpoint_publishes_all_cas_and_dsa_parameters(client, users, pki):
    client.force_login(users["bob"])
    call_command("init_pki", "--rotate")
    published = client.get("/api/keys/ca/").json()
    assert len(published["certificates"]) == 2
    assert published["server_signing"]["kind"] == "server-signing"
    assert int(published["dsa_parameters"]["q"], 16).bit_length() == 256


def _production_check(var_dir: Path, passphrase: str | None) -> subprocess.CompletedProcess:
    """`manage.py check` in production mode on a database of its own: server_env drops the
    caller's DATABASE_URL, so the children migrate a SQLite file under var_dir."""
    env = server_env(
        var_dir,
        "redis://127.0.0.1:9/0",
        DEBUG="0",
        SECRET_KEY="x" * 60,
        ALLOWED_HOSTS="chat.example.org",
    )
    env.pop("SECURECHAT_CA_PASSPHRASE", None)
    var_dir.mkdir(parents=True, exist_ok=True)
    if passphrase is not None:
        env["SECURECHAT_CA_PASSPHRASE"] = passphrase
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--skip-checks", "-v", "0"], cwd=ROOT, env=env, check=True)
    if passphrase is not None:
        subprocess.run([*run, "init_pki"], cwd=ROOT, env=env, check=True, capture_output=True)
    env["SECURECHAT_CA_PASSPHRASE"] = "wrong" if passphrase else ""
    result = subprocess.run([*run, "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    result.env = env
    return result


def test_the_start_up_checks_use_a_database_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'callers.sqlite3'}")
    _production_check(tmp_path / "var", "the-right-passphrase")
    assert (tmp_path / "var" / "db.sqlite3").exists()
    assert not (tmp_path / "callers.sqlite3").exists()


def test_starting_without_the_right_passphrase_fails_the_system_check(tmp_path):
    result = _production_check(tmp_path, "the-right-passphrase")
    assert result.returncode != 0
    assert "keys.E001" in result.stderr and "SECURECHAT_CA_PASSPHRASE is wrong" in result.stderr
    # init_pki cannot read the key either: the hint names the passphrase, not init_pki alone
    assert "Run `manage.py init_pki`." not in result.stderr
    assert "Set SECURECHAT_CA_PASSPHRASE to the passphrase the CA was created with" in (
        result.stderr
    )


def test_a_lost_passphrase_is_recovered_as_the_hint_says_by_rotating_the_ca(tmp_path):
    result = _production_check(tmp_path, "the-lost-passphrase")
    env = result.env  # now with a passphrase that cannot read the old CA
    run = [sys.executable, "manage.py"]
    rotated = subprocess.run(
        [*run, "init_pki", "--rotate"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert rotated.returncode == 0, rotated.stderr
    again = subprocess.run([*run, "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_starting_without_a_ca_fails_the_system_check(tmp_path):
    result = _production_check(tmp_path, None)
    assert result.returncode != 0
    assert "keys.E001" in result.stderr and "Run `manage.py init_pki`." in result.stderr


def test_issue_demo_keys_certifies_users_and_writes_their_private_keys(pki, users, tmp_path):
    from io import StringIO

    from cryptography.hazmat.primitives import serialization

    from cryptokit.keys import spki_der
    from keys.services import current_certificates

    out = StringIO()
    call_command("issue_demo_keys", "alice", "bob", "--out", str(tmp_path), stdout=out)
    assert "certified alice: ed25519" in out.getvalue()
    assert "certified bob: rsa-pss" in out.getvalue()
    for name in ("alice", "bob"):
        path = tmp_path / name / "signing.pem"
        assert path.stat().st_mode & 0o077 == 0
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        current = current_certificates(users[name])
        assert bytes(current["signing"].spki_der) == spki_der(key.public_key())
    again = StringIO()
    call_command("issue_demo_keys", "alice", "--out", str(tmp_path), stdout=again)
    assert "skipped alice" in again.getvalue()


def test_issue_demo_keys_names_the_users_that_do_not_exist(pki, users, tmp_path):
    with pytest.raises(CommandError) as error:
        call_command("issue_demo_keys", "alice", "nobody", "ghost", "--out", str(tmp_path))
    assert str(error.value) == (
        "No user named nobody, ghost: create them first (manage.py seed_users nobody ghost)."
    )
    assert not (tmp_path / "alice").exists()  # nothing done for the others either


def test_init_pki_with_a_wrong_passphrase_is_one_line(pki, settings):
    settings.CA_PASSPHRASE = "not-the-passphrase"
    ca_module._read_private_key.cache_clear()
    with pytest.raises(CommandError) as error:
        call_command("init_pki")
    assert "SECURECHAT_CA_PASSPHRASE is wrong" in str(error.value)
    assert "\n" not in str(error.value)
