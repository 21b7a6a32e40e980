"""The password-change form checks the old password through the login throttle: a stolen
session cannot be used to guess the account's password at full speed."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(users):
    alice = users["alice"]
    alice.set_password("the-right-passphrase")
    alice.save()
    return alice


def change(client, old: str):
    return client.post(
        "/accounts/password/",
        {
            "old_password": old,
            "new_password1": "a-new-long-passphrase",
            "new_password2": "a-new-long-passphrase",
        },
    )


def test_old_password_guesses_are_throttled_like_logins(client, alice, settings):
    client.force_login(alice)
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert "incorrect" in change(client, "a-wrong-guess").content.decode()
    refused = change(client, "the-right-passphrase").content.decode()
    assert "Too many failed login attempts" in refused
    alice.refresh_from_db()
    assert alice.check_password("the-right-passphrase")  # nothing changed


def test_the_right_old_password_changes_it(client, alice):
    client.force_login(alice)
    answer = change(client, "the-right-passphrase")
    assert answer.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-new-long-passphrase")
