"""The key directory against a real daphne stack: a second run uses the keys and
certificates of the first; keys certified elsewhere are never silently replaced; a key
change is a KeyChanged with both fingerprints, at once, not a timeout."""

import asyncio
import time

import pytest
from securechat_client import ChatClient, KeyChanged, KeyStoreError, NoMessage

from cryptokit.fingerprints import fingerprint
from cryptokit.keys import spki_der
from testing.processes import ChatStack

USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
PASSPHRASE = "keys of the test users"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("key-directory"), redis_server.url)
    server.seed(*USERS)
    yield server
    server.stop()


async def started(stack, name: str, keys_dir, **options) -> ChatClient:
    client = ChatClient(stack.url, keys_dir=keys_dir, key_passphrase=PASSPHRASE, **options)
    await client.login(name, stack.password(name))
    await client.connect()
    return client


def signing_fingerprint(client: ChatClient) -> str:
    return fingerprint(spki_der(client.keys.signing_key.public_key()))


def serials(client: ChatClient) -> tuple[str, str]:
    return client.keys.signing_serial, client.keys.encryption_serial


async def published_serials(client: ChatClient, name: str) -> tuple[str, str]:
    body = await client.http.get_json(f"/api/keys/users/{name}/")
    return body["signing"]["serial"], body["encryption"]["serial"]


def test_a_second_run_uses_the_keys_and_certificates_of_the_first(stack, tmp_path):
    async def scenario():
        first = await started(stack, "alice", tmp_path)
        made, certified = signing_fingerprint(first), serials(first)
        assert all(certified)
        await first.close()

        second = await started(stack, "alice", tmp_path)  # loads; renews nothing
        assert signing_fingerprint(second) == made
        assert serials(second) == certified
        assert await published_serials(second, "alice") == certified
        await second.close()

    asyncio.run(scenario())


def test_keys_certified_elsewhere_are_not_silently_replaced(stack, tmp_path):
    async def scenario():
        dave = await started(stack, "dave", tmp_path / "laptop")
        certified = serials(dave)
        elsewhere = ChatClient(stack.url, keys_dir=tmp_path / "empty", key_passphrase=PASSPHRASE)
        with pytest.raises(KeyStoreError, match="dave already has a certified") as error:
            await elsewhere.login("dave", stack.password("dave"))
        assert signing_fingerprint(dave) in str(error.value)
        assert await published_serials(dave, "dave") == certified
        await elsewhere.close()

        replaced = await started(stack, "dave", tmp_path / "empty", replace_keys=True)
        assert signing_fingerprint(replaced) != signing_fingerprint(dave)
        assert await published_serials(dave, "dave") == serials(replaced)
        for client in (dave, replaced):
            await client.close()

    asyncio.run(scenario())


def test_a_peer_with_new_keys_is_a_key_changed_with_both_fingerprints(stack, tmp_path):
    async def scenario():
        bob, carol = await started(stack, "bob", tmp_path), await started(stack, "carol", tmp_path)
        mine, theirs = await asyncio.gather(
            bob.direct_conversation("carol"), carol.direct_conversation("bob")
        )
        assert mine == theirs
        await bob.send_text(mine, "first")
        assert (await carol.receive_text(mine)).text == "first"  # carol pins bob's key
        old = signing_fingerprint(bob)
        await bob.close()

        bob = await started(stack, "bob", tmp_path / "new-device", replace_keys=True)
        assert await bob.direct_conversation("carol") == mine
        await bob.send_text(mine, "new keys")
        with pytest.raises(KeyChanged) as change:
            await carol.receive_text(mine)
        assert (change.value.username, change.value.kind) == ("bob", "signing")
        assert (change.value.old, change.value.new) == (old, signing_fingerprint(bob))
        # bob cannot see carol's refusal; what he gets says what he waited for
        with pytest.raises(NoMessage, match=f"No message in {mine} within 1 s"):
            await bob.receive_text(mine, timeout=1)

        await carol.accept_key_change("bob")  # after comparing safety numbers
        await bob.send_text(mine, "accepted")
        assert (await carol.receive_text(mine)).text == "accepted"
        for client in (bob, carol):
            await client.close()

    asyncio.run(scenario())


def test_a_key_change_refused_while_waiting_ends_the_wait_at_once(stack, tmp_path):
    """Members origin: erin must make or check the key for frank's new keys and refuses
    them; her pending receive ends with that KeyChanged, not 30 s later as a timeout."""

    async def scenario():
        erin = await started(stack, "erin", tmp_path)
        frank = await started(stack, "frank", tmp_path)
        conversation = await erin.create_conversation(["frank"], key_origin="members")
        await frank.wait_for_epoch(conversation, 1)
        waiting = asyncio.create_task(erin.receive_text(conversation, timeout=30))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        await frank.register_keys(rsa_bits=2048)  # frank's new keys: a new epoch is needed
        with pytest.raises(KeyChanged) as change:
            await waiting
        assert time.monotonic() - began < 10
        assert change.value.username == "frank" and change.value.old != change.value.new
        assert change.value.conversation == conversation
        for client in (erin, frank):
            await client.close()

    asyncio.run(scenario())
