"""The server signing key from the clients' side: `check` sees its end coming and its
end, `init_pki` renews it, clients take records signed by the new key and still verify
the old records, signed while the old key was valid."""

import asyncio
import datetime as dt
import subprocess
import sys
import time

import pytest

from chat.tests.test_malicious_server import attack
from client.securechat_client.client import ChatClient
from testing.processes import ROOT, ChatStack, manage

NAMES = ("alice", "bob", "carol")
LIFETIME_SECONDS = 12


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    # Renew only once expired here, so the short-lived key really signs epoch 1.
    server = ChatStack(
        tmp_path_factory.mktemp("renewal"), redis_server.url, CERTIFICATE_RENEW_DAYS="0"
    )
    server.seed(*NAMES)
    yield server
    server.stop()


def check(stack, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env={**stack.env, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def client(stack, name: str, keys=None) -> ChatClient:
    opened = ChatClient(stack.url)
    await opened.login(name, stack.password(name))
    await opened.load_trust()
    if keys is None:
        await opened.register_keys(rsa_bits=2048)
    else:
        opened.use_keys(keys)
    await opened.connect()
    return opened


def test_clients_verify_old_records_and_take_records_of_the_renewed_key(stack):
    old = attack(stack, "short_lived_server_key", seconds=LIFETIME_SECONDS)
    expires = dt.datetime.fromisoformat(old["not_after"])
    soon = check(stack, CERTIFICATE_RENEW_DAYS="30")
    assert soon.returncode == 0 and "keys.W001" in soon.stderr + soon.stdout

    async def before_expiry():
        alice, bob = await client(stack, "alice"), await client(stack, "bob")
        conversation = await alice.create_conversation(["bob"], title="renewal")
        await bob.wait_for_epoch(conversation, 1)
        await alice.send_text(conversation, "signed under the old server key")
        assert (await bob.receive_text(conversation)).order == 1
        keys = alice.keys, bob.keys
        await alice.close()
        await bob.close()
        return conversation, keys

    conversation, (alice_keys, bob_keys) = asyncio.run(before_expiry())
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
    expired = check(stack)
    assert expired.returncode != 0 and "keys.E002" in expired.stderr + expired.stdout
    renewed = manage(stack.env, "init_pki").stdout
    assert "server_key.renewed" in renewed
    assert check(stack).returncode == 0

    async def after_renewal():
        alice = await client(stack, "alice", alice_keys)
        carol = await client(stack, "carol")
        invitation = await alice.invite(conversation, "carol")
        await carol.accept_invitation(invitation)  # epoch 2, signed by the renewed key
        await alice.wait_for_epoch(conversation, 2)
        bob = await client(stack, "bob", bob_keys)  # a new session: nothing cached
        history = await bob.history(conversation)  # epoch 1: the expired key's record
        assert [m.text for m in history] == ["signed under the old server key"]
        await bob.fetch_epochs(conversation, [2])
        signers = {record.signer for record in bob.state(conversation).epochs.values()}
        assert signers == {"server"}
        for opened in (alice, bob, carol):
            await opened.close()
        return bob.trust.cache

    cache = asyncio.run(after_renewal())
    serials = {body["serial"] for body, _ in cache.values() if body["kind"] == "server-signing"}
    assert old["serial"] in serials and len(serials) == 2
