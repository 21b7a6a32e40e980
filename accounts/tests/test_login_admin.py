"""The admin: its login is throttled like the site's; lockouts are listed and lifted there."""

import pytest
import redis
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from accounts import throttle
from accounts.models import LoginLockout, User

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
WRONG = "wrong-password-Zq7"


@pytest.fixture
def root():
    return User.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def store(redis_server):
    return redis.Redis.from_url(redis_server.url)


def admin_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def site_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_admin_login_is_throttled_and_says_so(client, root):
    for _ in range(30):
        assert admin_login(client, "root", WRONG).status_code == 200
    response = admin_login(client, "root", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.context["form"].non_field_errors()[0]
    assert "_auth_user_id" not in client.session
    assert LoginLockout.objects.get().user == root


def test_admin_and_site_logins_share_one_counter(client, root):
    for _ in range(3):
        site_login(client, "root", WRONG)
    for _ in range(2):
        admin_login(client, "root", WRONG)
    assert "Too many" in site_login(client, "root", PASSWORD).context["form"].errors["__all__"][0]


def test_admin_login_still_works(client, root):
    response = admin_login(client, "root", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def lock_out(client, username, ip):
    for _ in range(5):
        site_login(client, username, WRONG, ip=ip)


def test_lockouts_are_listed_in_the_admin(client, root, alice):
    lock_out(client, "alice", "10.6.6.6")
    client.force_login(root)
    page = client.get("/admin/accounts/loginlockout/?state=current")
    assert page.status_code == 200
    content = page.content.decode()
    assert "alice" in content and "10.6.6.6" in content
    # A record, not a form: nothing to add, edit or delete by hand.
    lockout = LoginLockout.objects.get()
    detail = client.get(f"/admin/accounts/loginlockout/{lockout.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert client.get("/admin/accounts/loginlockout/add/").status_code == 403


def test_unlock_from_the_admin_lets_the_user_in_again(client, root, alice, store):
    lock_out(client, "alice", "10.6.6.6")
    assert "Too many" in str(site_login(client, "alice", PASSWORD, ip="10.6.6.6").content)
    lockout = LoginLockout.objects.get()
    admin_client = client.__class__()
    admin_client.force_login(root)
    response = admin_client.post(
        "/admin/accounts/loginlockout/",
        {"action": "unlock", ACTION_CHECKBOX_NAME: [lockout.pk]},
        follow=True,
    )
    assert "1 lockout(s) lifted." in response.content.decode()
    lockout.refresh_from_db()
    assert lockout.unlocked_by == root and lockout.unlocked_at is not None
    assert not store.exists(throttle.pair_key(lockout.username_hash, "10.6.6.6"))
    assert site_login(client, "alice", PASSWORD, ip="10.6.6.6").status_code == 302


def test_clearing_a_users_lockouts_from_the_user_list(client, root, alice, store):
    lock_out(client, "alice", "10.6.6.6")
    lock_out(client, "alice", "10.6.6.7")
    admin_client = client.__class__()
    admin_client.force_login(root)
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "unlock_logins", ACTION_CHECKBOX_NAME: [alice.pk]},
        follow=True,
    )
    assert "Login lockouts cleared for 1 user(s)." in response.content.decode()
    assert store.keys(f"{throttle.PREFIX}:pair:*") == []
    assert not LoginLockout.objects.filter(unlocked_at__isnull=True).exists()
    for ip in ("10.6.6.6", "10.6.6.7"):
        assert site_login(client.__class__(), "alice", PASSWORD, ip=ip).status_code == 302


def test_staff_without_the_change_permission_cannot_unlock(client, alice):
    viewer = User.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_loginlockout"))
    lock_out(client, "alice", "10.6.6.6")
    client.force_login(viewer)
    page = client.get("/admin/accounts/loginlockout/")
    assert page.status_code == 200 and b'value="unlock"' not in page.content
    client.post(
        "/admin/accounts/loginlockout/",
        {"action": "unlock", ACTION_CHECKBOX_NAME: [LoginLockout.objects.get().pk]},
    )
    assert LoginLockout.objects.get().unlocked_at is None
