"""Parallel attempts against the real backend and a real Redis: the count comes before the
check, in one atomic step, so a burst checks at most the limit and no counter loses its
expiry. Password checks are counted where they happen, in Django's argon2 hasher."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import connections
from django.test import RequestFactory

from accounts import throttle
from accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def argon2_checks(monkeypatch):
    """How many times argon2 verified a password (the real hasher runs every time)."""
    calls = {"count": 0}
    lock = threading.Lock()
    verify = Argon2PasswordHasher.verify

    def counting_verify(self, password, encoded):
        with lock:
            calls["count"] += 1
        return verify(self, password, encoded)

    monkeypatch.setattr(Argon2PasswordHasher, "verify", counting_verify)
    return calls


def attempt(username: str, password: str, ip: str, start: threading.Barrier):
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=ip)
    start.wait()
    try:
        return authenticate(request, username=username, password=password)
    finally:
        connections.close_all()


def burst(count: int, username: str, password: str, ip: str = "10.0.0.1") -> list:
    start = threading.Barrier(count)
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(attempt, username, password, ip, start) for _ in range(count)]
        return [future.result() for future in futures]


def test_100_parallel_wrong_passwords_check_at_most_the_limit(alice, argon2_checks, settings):
    assert settings.LOGIN_FAILURE_LIMIT == 5
    results = burst(100, "alice", "wrong-password")
    assert results == [None] * 100
    assert argon2_checks["count"] == 5
    # The right password, from the same address, is refused without being checked.
    assert burst(1, "alice", PASSWORD) == [None]
    assert argon2_checks["count"] == 5


def test_a_parallel_burst_from_another_address_leaves_the_owner_in(alice, argon2_checks):
    burst(100, "alice", "wrong-password", ip="10.6.6.6")
    assert burst(1, "alice", PASSWORD, ip="10.0.0.1") == [alice]


def test_no_counter_is_ever_seen_without_expiry(alice, redis_server):
    """Keys expire all the time while attempts run (as windows end under load): every key
    any observer sees must have a TTL, and so must every key left afterwards."""
    store = redis.Redis.from_url(redis_server.url)
    pattern = f"{throttle.PREFIX}:*"
    stop = threading.Event()
    unexpiring: list[bytes] = []

    def expire_constantly() -> None:
        while not stop.is_set():
            for key in store.scan_iter(match=pattern):
                store.pexpire(key, 1)

    def watch() -> None:
        while not stop.is_set():
            for key in store.scan_iter(match=pattern):
                if store.ttl(key) == -1:
                    unexpiring.append(key)

    helpers = [threading.Thread(target=expire_constantly), threading.Thread(target=watch)]
    for helper in helpers:
        helper.start()
    try:
        for round_number in range(5):
            burst(40, f"user{round_number}", "wrong-password", ip=f"10.1.0.{round_number}")
    finally:
        stop.set()
        for helper in helpers:
            helper.join()
    assert unexpiring == []
    assert all(store.ttl(key) > 0 for key in store.scan_iter(match=pattern))
