"""The login throttle through the site's login form, against the test's own Redis."""

import logging
import re
import time
from contextlib import contextmanager

import pytest
import redis
from django.contrib.auth import authenticate
from django.urls import reverse

from accounts import throttle
from accounts.models import LoginLockout, User
from testing.processes import RedisServer

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
WRONG = "wrong-password-Zq7"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def store(redis_server):
    return redis.Redis.from_url(redis_server.url)


def login(client, username, password, ip="10.0.0.1"):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def form_errors(response) -> list[str]:
    return response.context["form"].non_field_errors()


def logged_in(response) -> bool:
    return response.status_code == 302


@contextmanager
def security_lines():
    """The security log's lines, as formatted, while the block runs."""
    lines: list[str] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("securechat.security")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def test_after_five_failures_from_one_address_even_the_right_password_is_refused(
    client, alice, settings
):
    assert settings.LOGIN_FAILURE_LIMIT == 5
    for _ in range(5):
        assert not logged_in(login(client, "alice", WRONG))
    response = login(client, "alice", PASSWORD)
    assert not logged_in(response)
    assert "Too many failed login attempts" in form_errors(response)[0]
    assert "_auth_user_id" not in client.session


def test_failures_below_the_limit_do_not_block(client, alice):
    for _ in range(4):
        login(client, "alice", WRONG)
    assert logged_in(login(client, "alice", PASSWORD))


def test_the_limit_is_configurable(client, alice, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    login(client, "alice", WRONG)
    login(client, "alice", WRONG)
    assert "Too many" in form_errors(login(client, "alice", PASSWORD))[0]


def test_a_victim_is_not_locked_out_by_failures_from_another_address(client, alice):
    for _ in range(10):
        login(client, "alice", WRONG, ip="10.6.6.6")
    assert "Too many" in form_errors(login(client, "alice", PASSWORD, ip="10.6.6.6"))[0]
    assert logged_in(login(client, "alice", PASSWORD, ip="10.0.0.1"))


def test_a_success_clears_the_counter_of_its_address(client, alice, store):
    for _ in range(4):
        login(client, "alice", WRONG)
    assert logged_in(login(client, "alice", PASSWORD))
    client.logout()
    for _ in range(4):
        assert not logged_in(login(client, "alice", WRONG))
    assert logged_in(login(client, "alice", PASSWORD))


def test_one_address_failing_on_many_usernames_is_throttled(client, alice, settings):
    settings.LOGIN_IP_FAILURE_LIMIT = 3
    for number in range(3):
        login(client, f"guess{number}", WRONG, ip="10.6.6.6")
    assert "Too many" in form_errors(login(client, "alice", PASSWORD, ip="10.6.6.6"))[0]
    assert logged_in(login(client, "alice", PASSWORD, ip="10.7.7.7"))


def test_ipv6_addresses_count_per_64(client, alice):
    for host in range(5):
        login(client, "alice", WRONG, ip=f"2001:db8:1:2::{host + 1:x}")
    refused = login(client, "alice", PASSWORD, ip="2001:db8:1:2:ffff::9")
    assert "Too many" in form_errors(refused)[0]
    assert logged_in(login(client, "alice", PASSWORD, ip="2001:db8:1:3::1"))


def test_unknown_user_and_wrong_password_get_the_same_message(client, alice):
    unknown = form_errors(login(client, "nobody", WRONG))
    wrong = form_errors(login(client, "alice", WRONG))
    assert unknown == wrong == ["Please enter a correct username and password."]


def test_distributed_guessing_gets_a_growing_delay_not_a_lock(client, alice, settings, store):
    settings.LOGIN_USERNAME_SOFT_LIMIT = 20
    settings.LOGIN_USERNAME_DELAY_SECONDS = 2
    assert logged_in(login(client, "alice", PASSWORD, ip="10.0.0.1"))  # her usual address
    client.logout()
    for number in range(20):
        assert (
            "correct username"
            in form_errors(login(client, "alice", WRONG, ip=f"10.8.0.{number}"))[0]
        )
    # Over the soft limit: one attempt goes through and closes the gate behind it...
    assert "correct username" in form_errors(login(client, "alice", WRONG, ip="10.8.1.1"))[0]
    refused = form_errors(login(client, "alice", PASSWORD, ip="10.8.1.2"))
    assert "from many places" in refused[0]
    gate = throttle.gate_key(throttle.username_hash("alice"))
    assert 0 < store.ttl(gate) <= 2
    # ...while alice, from the address she logged in from before, is not slowed at all.
    assert logged_in(login(client, "alice", PASSWORD, ip="10.0.0.1"))
    client.logout()
    # Once the gate opens, a new address gets one attempt, then waits longer.
    store.delete(gate)  # what time would do
    assert "correct username" in form_errors(login(client, "alice", WRONG, ip="10.8.1.3"))[0]
    assert 2 < store.ttl(gate) <= 4
    store.delete(gate)
    assert logged_in(login(client, "alice", PASSWORD, ip="10.9.9.9"))


def test_the_soft_delay_is_capped(client, alice, settings, store):
    settings.LOGIN_USERNAME_SOFT_LIMIT = 1
    settings.LOGIN_USERNAME_DELAY_SECONDS = 10
    settings.LOGIN_USERNAME_MAX_DELAY_SECONDS = 25
    gate = throttle.gate_key(throttle.username_hash("alice"))
    ttls = []
    for number in range(5):
        store.delete(gate)
        login(client, "alice", WRONG, ip=f"10.8.2.{number}")
        ttls.append(store.ttl(gate))
    assert ttls[0] == -2  # below the limit: no gate
    assert 0 < ttls[1] <= 10 < ttls[2] <= 20 < ttls[3] <= 25
    assert ttls[4] == ttls[3] or 20 < ttls[4] <= 25


def test_every_counter_has_an_expiry_within_its_window(client, alice, store, settings):
    for number in range(7):
        login(client, "alice", WRONG, ip=f"10.0.0.{number % 2}")
    keys = store.keys(f"{throttle.PREFIX}:*")
    assert {key.decode().split(":")[2] for key in keys} == {"pair", "user", "ip"}
    for key in keys:
        window = (
            settings.LOGIN_USERNAME_WINDOW_SECONDS
            if b":user:" in key
            else settings.LOGIN_COOLDOWN_SECONDS
        )
        assert 0 < store.ttl(key) <= window


def test_a_lock_left_without_expiry_gets_one_back_and_ends(client, alice, store):
    # As the old code's get-then-set could leave it: a full counter and no TTL.
    key = throttle.pair_key(throttle.username_hash("alice"), "10.0.0.1")
    store.set(key, 99)
    assert store.ttl(key) == -1
    assert "Too many" in form_errors(login(client, "alice", PASSWORD))[0]
    assert 0 < store.ttl(key) <= 300
    store.delete(key)  # the window ends
    assert logged_in(login(client, "alice", PASSWORD))


def test_the_cool_down_ends(client, alice, store):
    for _ in range(5):
        login(client, "alice", WRONG)
    key = throttle.pair_key(throttle.username_hash("alice"), "10.0.0.1")
    assert 0 < store.ttl(key) <= 300
    store.delete(key)  # expiring the key is what time would do
    assert logged_in(login(client, "alice", PASSWORD))


def test_failures_and_the_lockout_are_logged_without_the_password(client, alice):
    with security_lines() as lines:
        for _ in range(6):
            login(client, "alice", WRONG, ip="10.4.4.4")
    user_hash = throttle.username_hash("alice")
    failed = [line for line in lines if line.startswith("login.failed ")]
    locked = [line for line in lines if line.startswith("login.locked ")]
    assert len(failed) == 5  # the sixth was refused unchecked
    assert f"user={user_hash}" in failed[0] and "ip=10.4.4.4" in failed[0]
    assert len(locked) == 1
    assert re.fullmatch(
        rf"login\.locked scope=pair user={user_hash} ip=10\.4\.4\.4 seconds=(29\d|300)", locked[0]
    )
    assert not any(WRONG in line or "alice" in line for line in lines)
    lockout = LoginLockout.objects.get()
    assert (lockout.scope, lockout.user, lockout.address) == ("pair", alice, "10.4.4.4")


def test_a_lockout_for_a_name_without_account_names_no_user(client, alice):
    for _ in range(5):
        login(client, "my-Password-typed-here", WRONG)
    lockout = LoginLockout.objects.get()
    assert lockout.user is None
    assert lockout.username_hash == throttle.username_hash("my-Password-typed-here")


def test_checks_without_a_request_share_one_counter(alice):
    for _ in range(5):
        assert authenticate(None, username="alice", password=WRONG) is None
    assert authenticate(None, username="alice", password=PASSWORD) is None
    key = throttle.pair_key(throttle.username_hash("alice"), throttle.NO_REQUEST)
    redis.Redis.from_url(throttle.settings.REDIS_URL).delete(key)
    assert authenticate(None, username="alice", password=PASSWORD) == alice


def test_without_redis_logins_fail_closed_with_a_clear_message(client, alice, settings, tmp_path):
    server = RedisServer(tmp_path / "redis")
    settings.REDIS_URL = server.url
    try:
        assert logged_in(login(client, "alice", PASSWORD))
        client.logout()
        server.stop()
        started = time.monotonic()
        with security_lines() as lines:
            response = login(client, "alice", PASSWORD)
        assert time.monotonic() - started < 10
        assert form_errors(response) == [
            "Logging in is unavailable right now. Please try again in a minute."
        ]
        assert "_auth_user_id" not in client.session
        assert not any(line.startswith("login.failed") for line in lines)
        server.start()
        assert logged_in(login(client, "alice", PASSWORD))
    finally:
        server.stop()
