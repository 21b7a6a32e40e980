import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("seed_users", *args, stdout=out)
    return out.getvalue()


def test_seeding_twice_creates_each_user_once():
    first = seed("alice", "bob")
    second = seed("alice", "bob", "carol")
    assert User.objects.filter(username__in=["alice", "bob", "carol"]).count() == 3
    assert "created alice password: " in first
    assert "skipped alice (already exists)" in second and "skipped bob" in second
    assert "created carol" in second


def test_generated_passwords_are_printed_once_and_work():
    out = seed("alice")
    password = out.split("password: ")[1].split()[0]
    user = User.objects.get(username="alice")
    assert user.check_password(password)
    assert user.password.startswith("argon2$argon2id$")
    assert password not in seed("alice")


def test_a_bad_row_is_reported_and_nothing_is_created(tmp_path):
    rows = [
        {"username": "dave", "display_name": "Dave", "password": "a-good-long-passphrase"},
        {"username": "eve", "password": "123"},
        {"username": "bad name!", "password": "another-good-passphrase"},
    ]
    path = tmp_path / "users.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(CommandError) as error:
        seed("--file", str(path))
    message = str(error.value)
    assert "row 2 (eve): password" in message
    assert "row 3 (bad name!): username" in message
    assert not User.objects.filter(username__in=["dave", "eve"]).exists()


def test_csv_rows_set_display_name_and_staff(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(
        "username,display_name,password,is_staff\n"
        "dave,Dave D.,a-good-long-passphrase,true\n"
        "erin,Erin,,no\n"
    )
    out = seed("--file", str(path))
    dave = User.objects.get(username="dave")
    assert dave.is_staff and dave.display_name == "Dave D."
    assert dave.check_password("a-good-long-passphrase")
    assert not User.objects.get(username="erin").is_staff
    assert "created erin password: " in out


def test_duplicate_rows_in_one_input_are_refused(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("username\nfrank\nFrank\n")
    with pytest.raises(CommandError, match="duplicate username"):
        seed("--file", str(path))
    assert not User.objects.exists()


def test_random_creates_n_new_users_each_time():
    seed("--random", "3")
    seed("--random", "2")
    assert User.objects.filter(username__startswith="demo").count() == 5


# --- bad input: one clear line, a non-zero exit, nothing created ----------------------


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


BAD_INPUTS = {
    "no arguments": (lambda tmp: [], "Nothing to create: name users"),
    "a negative --random": (lambda tmp: ["--random", "-3"], "at least 1, not -3"),
    "--random 0": (lambda tmp: ["--random", "0"], "at least 1, not 0"),
    "--random that is no number": (lambda tmp: ["--random", "abc"], "invalid int value"),
    "a JSON password that is a number": (
        lambda tmp: ["--file", _write(tmp, "u.json", '[{"username": "x", "password": 5}]')],
        "u.json row 1: password must be a string, not int",
    ),
    "a JSON username that is a list": (
        lambda tmp: ["--file", _write(tmp, "u.json", '[{"username": ["x"]}]')],
        "username must be a string, not list",
    ),
    "a missing file": (
        lambda tmp: ["--file", str(tmp / "absent.csv")],
        "absent.csv: cannot read it (No such file or directory)",
    ),
    "a file that is not JSON": (
        lambda tmp: ["--file", _write(tmp, "u.json", "{nope")],
        "u.json: not valid JSON",
    ),
    "JSON that is not a list": (
        lambda tmp: ["--file", _write(tmp, "u.json", '{"username": "x"}')],
        "expected a JSON list of objects",
    ),
    "a CSV row longer than its header": (
        lambda tmp: ["--file", _write(tmp, "u.csv", "username\nfrank,extra\n")],
        "u.csv row 1: more values than the header has columns",
    ),
    "a file that is not UTF-8": (
        lambda tmp: ["--file", _write(tmp, "u.csv", b"username\n\xff\xfe\n")],
        "u.csv: not UTF-8 text",
    ),
    "another file type": (
        lambda tmp: ["--file", _write(tmp, "u.txt", "x")],
        "u.txt: use a .csv or .json file",
    ),
    "--staff without names": (lambda tmp: ["--random", "2", "--staff"], "apply to users named"),
    "--staff with --superuser": (
        lambda tmp: ["alice", "--staff", "--superuser"],
        "not allowed with argument",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_creates_nothing(case, tmp_path):
    arguments, expected = BAD_INPUTS[case]
    with pytest.raises(CommandError) as error:
        seed(*arguments(tmp_path))
    message = str(error.value)
    assert expected in message
    assert "\n" not in message and "Traceback" not in message
    assert not User.objects.exists()


def test_a_misplaced_value_in_is_staff_is_not_repeated(tmp_path):
    # a row shifted by one column puts the password where is_staff belongs
    path = _write(tmp_path, "u.csv", "username,display_name,is_staff\nfrank,Frank,hunter2-secret\n")
    with pytest.raises(CommandError) as error:
        seed("--file", path)
    assert "is_staff must be true or false" in str(error.value)
    assert "hunter2-secret" not in str(error.value)


def test_bad_input_from_a_real_shell_is_one_line_on_stderr_and_a_non_zero_exit(tmp_path):
    import subprocess
    import sys

    from testing.processes import ROOT, server_env

    env = server_env(tmp_path / "var", "redis://127.0.0.1:9/0")
    users_file = _write(tmp_path, "users.json", '[{"username": "x", "password": 5}]')
    for arguments, code, expected in [
        (["--file", users_file], 1, "CommandError: Nothing was created: users.json row 1: "),
        (["--random", "-3"], 1, "CommandError: --random needs a number of users of at least 1"),
        ([], 1, "CommandError: Nothing to create"),
        (["--random", "abc"], 2, "seed_users: error: argument --random: invalid int value"),
    ]:
        result = subprocess.run(
            [sys.executable, "manage.py", "seed_users", *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == code, (arguments, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr  # one line, no usage, no traceback
        assert expected in result.stderr


# --- a working admin ------------------------------------------------------------------


def test_staff_are_operators_who_log_in_see_everything_and_revoke(client, pki):
    from keys.demo import certify_new_keys
    from keys.models import AuditEvent, Certificate

    out = seed("olga", "--staff")
    password = out.split("password: ")[1].split()[0]
    alice = User.objects.create_user("alice")
    certify_new_keys(alice, "ed25519", rsa_bits=2048)
    page = client.get("/admin/login/")
    assert page.status_code == 200
    response = client.post("/admin/login/?next=/admin/", {"username": "olga", "password": password})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    for url in [
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/loginlockout/",
        "/admin/keys/certificate/",
        "/admin/keys/certificateauthority/",
        "/admin/keys/auditevent/",
        "/admin/chat/conversation/",
        "/admin/chat/invitation/",
    ]:
        assert client.get(url).status_code == 200, url
    certificate = Certificate.objects.filter(owner=alice).first()
    response = client.post(
        "/admin/keys/certificate/",
        {"action": "revoke_selected", "_selected_action": [certificate.pk], "reason": "stolen"},
    )
    assert response.status_code == 302
    assert set(Certificate.objects.filter(owner=alice).values_list("status", flat=True)) == {
        "revoked"
    }
    event = AuditEvent.objects.filter(action="certificate.revoked").first()
    assert event.actor.username == "olga" and event.detail == "admin: stolen"


def test_operators_cannot_change_users_or_grant_themselves_more(client):
    seed("olga", "--staff")
    olga = User.objects.get(username="olga")
    assert olga.is_staff and not olga.is_superuser
    client.force_login(olga)
    page = client.get(f"/admin/accounts/user/{olga.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    client.post(f"/admin/accounts/user/{olga.pk}/change/", {"is_superuser": "on"})
    olga.refresh_from_db()
    assert not olga.is_superuser


def test_superuser_seeding_gives_every_permission():
    seed("root", "--superuser")
    root = User.objects.get(username="root")
    assert root.is_staff and root.is_superuser
    assert not root.groups.exists()


def test_staff_in_a_file_are_operators_too(tmp_path):
    from accounts.seeding import OPERATORS_GROUP

    path = _write(tmp_path, "u.csv", "username,is_staff\nolga,yes\n")
    seed("--file", path)
    assert User.objects.get(username="olga").groups.filter(name=OPERATORS_GROUP).exists()
