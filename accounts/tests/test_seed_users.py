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
