import pytest
from django.contrib.auth.hashers import make_password
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

STRONG = "correct-horse-battery-staple"


def register(client, username="alice", password1=STRONG, password2=STRONG):
    return client.post(
        reverse("accounts:register"),
        {
            "username": username,
            "display_name": "Alice",
            "password1": password1,
            "password2": password2,
        },
    )


def test_registration_creates_an_argon2id_user_and_logs_in(client):
    response = register(client)
    assert response.status_code == 302
    user = User.objects.get(username="alice")
    assert user.password.startswith("argon2$argon2id$")
    assert user.display_name == "Alice"
    assert client.get(reverse("home")).status_code == 200


def test_registration_rejects_a_duplicate_username(client):
    User.objects.create_user("alice", password=STRONG)
    response = register(client, username="Alice")
    assert response.status_code == 200
    assert "username" in response.context["form"].errors
    assert User.objects.count() == 1


def test_registration_rejects_a_weak_password(client):
    response = register(client, password1="password", password2="password")
    assert response.status_code == 200
    assert "password2" in response.context["form"].errors
    assert not User.objects.exists()


def test_registration_rejects_a_mismatched_confirmation(client):
    response = register(client, password2=STRONG + "x")
    assert response.status_code == 200
    errors = response.context["form"].errors["password2"]
    assert any("match" in error for error in errors)
    assert not User.objects.exists()


def test_an_old_pbkdf2_hash_is_upgraded_to_argon2id_on_login(client):
    user = User.objects.create(username="bob")
    user.password = make_password(STRONG, hasher="pbkdf2_sha256")
    user.save()
    response = client.post(reverse("accounts:login"), {"username": "bob", "password": STRONG})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


def test_logout_requires_post_and_ends_the_session(client):
    User.objects.create_user("alice", password=STRONG)
    client.post(reverse("accounts:login"), {"username": "alice", "password": STRONG})
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("home")).status_code == 302


def test_password_change_rehashes_and_old_password_stops_working(client):
    User.objects.create_user("alice", password=STRONG)
    client.post(reverse("accounts:login"), {"username": "alice", "password": STRONG})
    new = "another-long-passphrase-9"
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": STRONG, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    user = User.objects.get(username="alice")
    assert user.check_password(new) and not user.check_password(STRONG)


def test_contacts_can_be_added_and_removed(client):
    alice = User.objects.create_user("alice", password=STRONG)
    User.objects.create_user("bob", password=STRONG)
    client.force_login(alice)
    client.post(reverse("accounts:contacts"), {"username": "bob"})
    assert list(alice.contacts.values_list("username", flat=True)) == ["bob"]
    response = client.post(reverse("accounts:contacts"), {"username": "nobody"})
    assert "username" in response.context["form"].errors
    client.post(reverse("accounts:contact_remove", args=["bob"]))
    assert not alice.contacts.exists()
