"""One account cannot make the PKI API do unbounded work: open challenges are capped and
purged, and every /api/keys/ call counts against a per-minute quota."""

import datetime as dt

import pytest
from django.utils import timezone

from keys.models import PopChallenge
from keys.tests.test_certificates import (
    encryption_keys,
    make_signing_key,
    register,
    request_challenge,
)

pytestmark = pytest.mark.django_db

__all__ = ["encryption_keys"]  # the session fixture, shared with test_certificates


@pytest.fixture
def alice_client(client, pki, users):
    client.force_login(users["alice"])
    return client


def test_open_challenges_are_capped_per_user(alice_client, encryption_keys, settings):
    settings.POP_CHALLENGES_PER_USER = 3
    key = make_signing_key("ed25519")
    for _ in range(3):
        assert request_challenge(alice_client, key, encryption_keys[0]).status_code == 201
    refused = request_challenge(alice_client, key, encryption_keys[0])
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_challenges")
    assert PopChallenge.objects.count() == 3


def test_expired_and_answered_challenges_are_purged(alice_client, encryption_keys, settings):
    settings.POP_CHALLENGES_PER_USER = 2
    key = make_signing_key("ed25519")
    for _ in range(2):
        request_challenge(alice_client, key, encryption_keys[0])
    PopChallenge.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert request_challenge(alice_client, key, encryption_keys[0]).status_code == 201
    assert PopChallenge.objects.count() == 1  # the two expired ones are gone
    answer, _ = register(alice_client, "alice", key, encryption_keys[0])
    assert answer.status_code == 201
    assert (
        request_challenge(alice_client, make_signing_key("ed25519"), encryption_keys[1]).status_code
        == 201
    )
    assert PopChallenge.objects.filter(used=True).count() == 0


def test_the_pki_api_is_rate_limited_per_account(client, pki, users, settings):
    settings.API_REQUESTS_PER_MINUTE = 5
    client.force_login(users["alice"])
    answers = [client.get("/api/keys/ca/") for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429, 429]
    assert answers[-1].json()["code"] == "rate_limited"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    client.force_login(users["bob"])  # another account has its own budget
    assert client.get("/api/keys/ca/").status_code == 200
