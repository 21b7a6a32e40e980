import pytest
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD)


def login(client, username, password, ip="10.0.0.1"):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def form_errors(response) -> list[str]:
    return response.context["form"].non_field_errors()


def test_after_five_failures_even_the_right_password_is_refused(client, alice, settings):
    assert settings.LOGIN_FAILURE_LIMIT == 5
    for _ in range(5):
        assert login(client, "alice", "wrong-password").status_code == 200
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in form_errors(response)[0]
    assert "_auth_user_id" not in client.session


def test_failures_below_the_limit_do_not_block(client, alice):
    for _ in range(4):
        login(client, "alice", "wrong-password")
    assert login(client, "alice", PASSWORD).status_code == 302


def test_the_limit_is_configurable(client, alice, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    login(client, "alice", "wrong-password")
    login(client, "alice", "wrong-password")
    assert "Too many" in form_errors(login(client, "alice", PASSWORD))[0]


def test_the_username_limit_holds_from_another_ip(client, alice):
    for number in range(5):
        login(client, "alice", "wrong-password", ip=f"10.0.0.{number}")
    assert "Too many" in form_errors(login(client, "alice", PASSWORD, ip="10.9.9.9"))[0]


def test_one_ip_failing_on_many_usernames_is_throttled(client, alice, settings):
    settings.LOGIN_IP_FAILURE_LIMIT = 3
    for number in range(3):
        login(client, f"guess{number}", "wrong-password", ip="10.6.6.6")
    assert "Too many" in form_errors(login(client, "alice", PASSWORD, ip="10.6.6.6"))[0]
    assert login(client, "alice", PASSWORD, ip="10.7.7.7").status_code == 302


def test_unknown_user_and_wrong_password_get_the_same_message(client, alice):
    unknown = form_errors(login(client, "nobody", "wrong-password"))
    wrong = form_errors(login(client, "alice", "wrong-password"))
    assert unknown == wrong == ["Please enter a correct username and password."]


def test_the_cool_down_ends(client, alice, redis_server):
    import redis

    for _ in range(5):
        login(client, "alice", "wrong-password")
    # The cool-down is a TTL in the real Redis; expiring the keys is what time would do.
    connection = redis.Redis.from_url(redis_server.url)
    keys = connection.keys("*login-failures:user:*")
    assert keys and all(0 < connection.ttl(key) <= 300 for key in keys)
    connection.delete(*keys)
    assert login(client, "alice", PASSWORD).status_code == 302
