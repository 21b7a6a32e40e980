"""`manage.py revoke USER --reason R`: the revocation the admin's action makes, from a shell."""

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from keys.demo import certify_new_keys
from keys.models import AuditEvent, Certificate
from keys.services import certificate_revoked
from securechat.tests.logcapture import captured
from testing.processes import ROOT, server_env

pytestmark = pytest.mark.django_db


def test_revoke_revokes_the_pair_audits_logs_and_announces(
    users, pki, django_capture_on_commit_callbacks
):
    alice = users["alice"]
    _, _, signing, encryption = certify_new_keys(alice, "ed25519", rsa_bits=2048)
    heard = []

    def listener(sender, certificate, reason, **kwargs):
        heard.append((certificate.serial, reason))

    certificate_revoked.connect(listener)
    out = StringIO()
    try:
        with captured() as lines, django_capture_on_commit_callbacks(execute=True):
            call_command("revoke", "alice", "--reason", "laptop\nstolen", stdout=out)
    finally:
        certificate_revoked.disconnect(listener)
    assert out.getvalue().startswith("revoked 2 certificate(s) of alice: ")
    revoked = Certificate.objects.filter(owner=alice, status="revoked")
    assert {c.serial for c in revoked} == {signing.serial, encryption.serial}
    assert {c.revocation_reason for c in revoked} == {"laptop stolen"}
    # the same records, signal and audit as the admin's action, with the path named
    serials = (signing.serial, encryption.serial)
    assert sorted(heard) == sorted((serial, "laptop stolen") for serial in serials)
    events = AuditEvent.objects.filter(action="certificate.revoked")
    assert {(e.actor, e.subject, e.detail) for e in events} == {
        (None, alice, "command: laptop stolen")
    }
    line = 'certificate.revoked actor=- subject=alice serial={} via=command detail="laptop stolen"'
    assert sorted(lines) == sorted(line.format(serial) for serial in serials)


def test_revoke_without_active_keys_is_refused_in_one_line(users, pki):
    with pytest.raises(CommandError, match=r"^alice has no active keys to revoke\.$"):
        call_command("revoke", "alice", "--reason", "x")
    assert not AuditEvent.objects.filter(action="certificate.revoked").exists()


def test_a_reason_cannot_break_the_security_log_line(
    users, pki, django_capture_on_commit_callbacks
):
    certify_new_keys(users["alice"], "ed25519", rsa_bits=2048)
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        call_command("revoke", "alice", "--reason", 'x" subject=bob', stdout=StringIO())
    assert all("\n" not in line for line in lines)
    assert all('detail="x\\" subject=bob"' in line for line in lines)
    assert all(" subject=alice " in line for line in lines)


def test_operator_commands_in_a_real_shell_fail_in_one_line(tmp_path):
    env = server_env(tmp_path, "redis://127.0.0.1:9/0")
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--skip-checks", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*run, "init_pki"], cwd=ROOT, env=env, check=True, capture_output=True)
    for arguments, code, expected in [
        (["revoke", "nobody", "--reason", "x"], 1, "CommandError: No user named 'nobody'."),
        (["deactivate_user", "nobody", "--reason", "x"], 1, "No user named 'nobody'."),
        (["delete_user", "nobody", "--reason", "x"], 1, "No user named 'nobody'."),
        (["revoke", "nobody"], 2, "error: the following arguments are required: --reason"),
        (["issue_demo_keys", "nobody"], 1, "CommandError: No user named nobody: create them"),
    ]:
        result = subprocess.run(
            [*run, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == code, (arguments, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr
