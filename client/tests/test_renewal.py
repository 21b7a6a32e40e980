"""Certificate renewal by the Python client against a real daphne stack whose
certificates live 20 days: the same keys, new certificates, no new conversation key."""

import asyncio
import datetime as dt

import pytest

from client.securechat_client.client import ChatClient
from client.securechat_client.keystore import KeyPair
from client.securechat_client.renewal import renew_if_due, renewal_due
from testing.processes import ChatStack

VALIDITY_DAYS = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(
        tmp_path_factory.mktemp("renewal"),
        redis_server.url,
        CERTIFICATE_VALIDITY_DAYS=str(VALIDITY_DAYS),
        CERTIFICATE_RENEW_DAYS="5",
    )
    server.seed("alice", "bob")
    yield server
    server.stop()


async def logged_in(stack, name: str, *, keys: KeyPair | None = None) -> ChatClient:
    client = ChatClient(stack.url)
    await client.login(name, stack.password(name))
    await client.load_trust()
    if keys is None:
        await client.register_keys(rsa_bits=2048)
    else:
        client.use_keys(keys)
    return client


def test_a_client_renews_only_when_due_and_its_conversations_keep_their_key(stack):
    async def scenario():
        alice, bob = await logged_in(stack, "alice"), await logged_in(stack, "bob")
        for client in (alice, bob):
            await client.connect()
        conversation = await alice.create_conversation(["bob"])
        await bob.wait_for_epoch(conversation, 1)
        old = (alice.keys.signing_serial, alice.keys.encryption_serial)

        assert await renew_if_due(alice, within_days=VALIDITY_DAYS - 2) is False
        assert (alice.keys.signing_serial, alice.keys.encryption_serial) == old

        assert await renew_if_due(alice, within_days=VALIDITY_DAYS + 1) is True
        new = (alice.keys.signing_serial, alice.keys.encryption_serial)
        assert set(new).isdisjoint(old)
        published = await bob.http.get_json("/api/keys/users/alice/")
        assert (published["signing"]["serial"], published["encryption"]["serial"]) == new
        for serial in old:
            assert (await bob.http.get_json(f"/api/keys/certificates/{serial}/"))[
                "status"
            ] == "superseded"
        assert await renew_if_due(alice, within_days=VALIDITY_DAYS - 2) is False

        # Same keys: the server made no new epoch, and the renewed signing certificate
        # signs in the epoch both already hold.
        with pytest.raises(TimeoutError):
            await bob.next_event(
                "epoch.new", timeout=1, predicate=lambda e: e["epoch"]["epoch"] > 1
            )
        await alice.send_text(conversation, "same keys, new certificates")
        message = await bob.receive_text(conversation)
        assert (message.text, message.epoch) == ("same keys, new certificates", 1)
        assert not alice.problems and not bob.problems
        for client in (alice, bob):
            await client.close()

    asyncio.run(scenario())


def test_keys_without_the_active_serials_are_due(stack):
    async def scenario():
        first = await logged_in(stack, "bob")
        # The same device later: keys from disk carry no serials.
        loaded = KeyPair(first.keys.signing_key, first.keys.encryption_key)
        later = await logged_in(stack, "bob", keys=loaded)
        assert await renew_if_due(later, within_days=0) is True
        assert later.keys.signing_serial and later.keys.signing_serial != first.keys.signing_serial
        assert await renew_if_due(later, within_days=0) is False
        for client in (first, later):
            await client.close()

    asyncio.run(scenario())


def test_the_renewal_rule_reads_expiry_and_serials():
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    keys = KeyPair(None, None, signing_serial="aa", encryption_serial="bb")

    def published(days_left: float, signing_serial: str = "aa") -> dict:
        not_after = (now + dt.timedelta(days=days_left)).isoformat()
        return {
            "signing": {"serial": signing_serial, "not_after": not_after},
            "encryption": {"serial": "bb", "not_after": not_after},
        }

    assert not renewal_due(published(31), keys, within_days=30, now=now)
    assert renewal_due(published(29), keys, within_days=30, now=now)
    assert renewal_due(published(31, signing_serial="cc"), keys, within_days=30, now=now)
    assert renewal_due({"encryption": published(31)["encryption"]}, keys, within_days=30, now=now)
