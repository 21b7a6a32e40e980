"""A malicious server against honest clients, members key origin: the test owns the
server (its database, CA and signing key: chat/tests/malicious_server.py) and the honest
members run the project's own ChatClient against a real daphne + Redis + SQLite.

Each attack must be refused by every honest client and reported in `problems`, and no
message an honest member sends afterwards may open with any key the attacker holds. The
two honest members then keep chatting."""

import asyncio
import base64
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from chat.tests.malicious_server import epoch_event
from chat.tests.test_chat_flow import connected
from client.securechat_client.client import ChatClient
from client.securechat_client.conversation import unb64
from client.securechat_client.errors import ProtocolError, TrustError
from client.securechat_client.keystore import KeyPair
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.membership import Statement, key_hashes
from testing.processes import ROOT, ChatStack

NAMES = ("alice", "bob", "carol", "mallory")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    server = ChatStack(tmp_path_factory.mktemp("malicious"), redis_server.url)
    server.seed(*NAMES)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyring(stack) -> dict[str, KeyPair]:
    """Each user's certified keys, made once: every test starts new clients with them
    (new clients: empty pins, so every test pins from scratch)."""

    async def register() -> dict[str, KeyPair]:
        keys = {}
        for name in NAMES:
            client = await connected(stack, name)
            keys[name] = client.keys
            await client.close()
        return keys

    return asyncio.run(register())


def attack(stack, name: str, **arguments) -> dict:
    """Run one of the malicious server's moves in the server's own environment."""
    result = subprocess.run(
        [sys.executable, "-m", "chat.tests.malicious_server", name, json.dumps(arguments)],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def restore(stack, conversation: str, members: list[str]) -> None:
    """The attack is over: the database as it was at epoch 1."""
    attack(
        stack, "restore", conversation=conversation, epoch=1, members=members, key_origin="members"
    )


async def clients(stack, keyring, *names, kind=ChatClient) -> list[ChatClient]:
    opened = []
    for name in names:
        client = kind(stack.url)
        await client.login(name, stack.password(name))
        await client.load_trust()
        client.use_keys(keyring[name])
        await client.connect()
        opened.append(client)
    return opened


async def refusal(client: ChatClient, code: str, timeout: float = 10) -> TrustError:
    """The problem `client` reported with `code` (it must report one in time)."""
    for _ in range(int(timeout / 0.05)):
        for problem in client.problems:
            if isinstance(problem, TrustError) and problem.code == code:
                return problem
        await asyncio.sleep(0.05)
    raise AssertionError(f"{client.username} reported no {code}: {client.problems}")


async def members_conversation(creator: ChatClient, *others: ChatClient) -> str:
    conversation = await creator.create_conversation(
        [o.username for o in others], key_origin="members"
    )
    for other in others:
        await other.wait_for_epoch(conversation, 1)
    return conversation


async def chat_carries_on(first: ChatClient, second: ChatClient, conversation: str) -> None:
    for sender, reader in ((first, second), (second, first)):
        text = f"{sender.username} still talks to {reader.username}"
        await sender.send_text(conversation, text)
        received = [(await reader.receive_text(conversation)).text for _ in range(1)]
        while received[-1] != text and len(received) < 5:  # earlier messages come first
            received.append((await reader.receive_text(conversation)).text)
        assert received[-1] == text, received


def last_order(stack, conversation: str) -> int:
    with sqlite3.connect(stack.database_path) as db:
        row = db.execute(
            "SELECT last_order FROM chat_conversation WHERE id = ?",
            (conversation.replace("-", ""),),
        ).fetchone()
    return row[0]


def attackers_keys(stack, conversation: str, mallory: KeyPair, known: list[bytes]) -> list[bytes]:
    """Every epoch key mallory can open from the database, plus those the attack made."""
    with sqlite3.connect(stack.database_path) as db:
        wrapped = db.execute(
            "SELECT w.wrapped_key FROM chat_wrappedkey w JOIN chat_keyepoch e ON e.id = w.epoch_id"
            " JOIN accounts_user u ON u.id = w.member_id"
            " WHERE e.conversation_id = ? AND u.username = 'mallory'"
            " AND w.certificate_serial != ''",
            (conversation.replace("-", ""),),
        ).fetchall()
    keys = list(known)
    for (blob,) in wrapped:
        try:
            keys.append(wrapping.oaep_decrypt(mallory.encryption_key, bytes(blob)))
        except CryptoError:
            pass
    return keys


def assert_unreadable(stack, conversation: str, after: int, keys: list[bytes]) -> None:
    """Honest messages stored after order `after` exist and open with none of `keys`."""
    with sqlite3.connect(stack.database_path) as db:
        rows = db.execute(
            "SELECT m.epoch, u.username, m.sender_serial, m.device, m.sequence, m.timestamp_ms,"
            " m.iv,"
            " m.ciphertext FROM chat_message m JOIN accounts_user u ON u.id = m.sender_id"
            ' WHERE m.conversation_id = ? AND m."order" > ?',
            (conversation.replace("-", ""), after),
        ).fetchall()
    assert rows, "no honest message was sent after the attack"
    for epoch, sender, serial, device, sequence, timestamp, iv, ciphertext in rows:
        header = encoding.message_header(
            conversation_id=conversation,
            epoch=epoch,
            sender=sender,
            sender_serial=serial,
            device=device,
            sequence=sequence,
            timestamp_ms=timestamp,
        )
        for key in keys:
            with pytest.raises(CryptoError):
                wrapping.aes_gcm_decrypt(key, bytes(iv), bytes(ciphertext), header)


async def close(*opened: ChatClient) -> None:
    for client in opened:
        await client.close()


def signed_statement(conversation, keys: KeyPair, actor, action, subject, roster, hashes=None):
    return Statement.create(
        conversation,
        keys.signing_key,
        action=action,
        subject=subject,
        actor=actor,
        actor_serial=keys.signing_serial,
        roster_epoch=roster,
        key_hashes=hashes or (b"", b""),
    )


def forged_record(conversation, signer: str, keys: KeyPair, state, members, changes=()) -> tuple:
    """An epoch.new signed with `keys` for `members` ({name: KeyPair}), following the
    newest epoch `state` verified; (event, the epoch key the forger knows)."""
    epoch_key = wrapping.new_epoch_key()
    previous = state.newest
    wrapped = [
        (
            name,
            pair.encryption_serial,
            wrapping.oaep_encrypt(pair.encryption_key.public_key(), epoch_key),
        )
        for name, pair in members.items()
    ]
    number = previous.number + 1
    roster = number if changes else previous.roster
    record = encoding.distribution_record(
        conversation_id=conversation,
        epoch=number,
        previous_epoch=previous.number,
        roster_epoch=roster,
        key_origin="members",
        signer=signer,
        signer_serial=keys.signing_serial,
        members=wrapped,
        changes=[c.signed_bytes(conversation) for c in changes],
    )
    event = epoch_event(
        conversation,
        number=number,
        previous=previous.number,
        roster=roster,
        signer=signer,
        signer_serial=keys.signing_serial,
        signature=signing.sign(keys.signing_key, record),
        members=wrapped,
        changes=[c.to_json() for c in changes],
    )
    return event, epoch_key


def test_a_switched_key_origin_is_refused_by_every_member(stack, keyring):
    async def scenario():
        alice, bob, mallory = await clients(stack, keyring, "alice", "bob", "mallory")
        conversation = await members_conversation(alice, bob)
        attack(stack, "switch_origin", conversation=conversation, extra="mallory")
        for honest in (alice, bob):
            await refusal(honest, "origin_changed")
            assert honest.state(conversation).current_epoch == 1
        # mallory holds the key of the server's record: that is what the attack gave her
        known = list((await _held_keys(mallory, conversation)).values())
        assert known, "the forged record did not reach mallory"
        before = last_order(stack, conversation)
        try:  # the server may take it in the join grace period: under epoch 1, not 2
            await alice.send_text(conversation, "not for mallory")
        except ProtocolError as refused:
            assert refused.code == "stale_epoch"
        restore(stack, conversation, ["alice", "bob"])
        await chat_carries_on(alice, bob, conversation)
        keys = attackers_keys(stack, conversation, keyring["mallory"], known)
        assert_unreadable(stack, conversation, before, keys)
        await close(alice, bob, mallory)

    asyncio.run(scenario())


async def _held_keys(client: ChatClient, conversation: str, timeout: float = 10) -> dict:
    for _ in range(int(timeout / 0.05)):
        state = client.conversations.get(conversation)
        if state is not None and state.epoch_keys:
            return state.epoch_keys
        await asyncio.sleep(0.05)
    return {}


def test_a_reconnecting_member_refuses_a_changed_origin(stack, keyring):
    async def scenario():
        alice, bob = await clients(stack, keyring, "alice", "bob")
        conversation = await members_conversation(alice, bob)
        attack(stack, "switch_origin", conversation=conversation, extra="carol")
        await refusal(bob, "origin_changed")
        # bob's next session, with what his device remembers of the conversation
        again = ChatClient(stack.url)
        await again.login("bob", stack.password("bob"))
        await again.load_trust()
        again.use_keys(keyring["bob"])
        again.conversations[conversation] = bob.state(conversation)
        await again.connect()  # conversation.list now says "server"
        await refusal(again, "origin_changed")
        assert again.state(conversation).key_origin == "members"
        await close(again)
        restore(stack, conversation, ["alice", "bob"])
        await close(alice, bob)

    asyncio.run(scenario())


def test_a_forged_key_request_with_an_extra_member_is_refused(stack, keyring):
    async def scenario():
        alice, bob = await clients(stack, keyring, "alice", "bob")
        conversation = await members_conversation(alice, bob)
        attack(stack, "forged_request", conversation=conversation, extra="mallory", asked="alice")
        problem = await refusal(alice, "members_mismatch")
        assert "mallory" in problem.message
        assert _epochs_in_database(stack, conversation) == [1]  # alice made no key
        restore(stack, conversation, ["alice", "bob"])
        before = last_order(stack, conversation)
        await chat_carries_on(alice, bob, conversation)
        assert_unreadable(
            stack, conversation, before, attackers_keys(stack, conversation, keyring["mallory"], [])
        )
        await close(alice, bob)

    asyncio.run(scenario())


def _epochs_in_database(stack, conversation: str) -> list[int]:
    with sqlite3.connect(stack.database_path) as db:
        rows = db.execute(
            "SELECT number FROM chat_keyepoch WHERE conversation_id = ? ORDER BY number",
            (conversation.replace("-", ""),),
        ).fetchall()
    return [number for (number,) in rows]


def test_a_second_certificate_under_a_members_name_is_refused(stack, keyring):
    async def scenario():
        alice, bob, mallory = await clients(stack, keyring, "alice", "bob", "mallory")
        conversation = await members_conversation(alice, bob)
        await chat_carries_on(alice, bob, conversation)  # bob has pinned alice's key
        forged = attack(
            stack,
            "second_certificate",
            conversation=conversation,
            impersonate="alice",
            extra="mallory",
        )
        for honest in (alice, bob):  # alice refuses a key under her own name too
            problem = await refusal(honest, "key_changed")
            assert problem.username == "alice" and problem.old != problem.new
            assert forged["epoch"] not in honest.state(conversation).epoch_keys
        before = last_order(stack, conversation)
        await chat_carries_on(alice, bob, conversation)
        keys = attackers_keys(stack, conversation, keyring["mallory"], [unb64(forged["key"])])
        assert_unreadable(stack, conversation, before, keys)
        await close(alice, bob, mallory)

    asyncio.run(scenario())


def test_a_record_signed_by_a_non_member_is_refused(stack, keyring):
    async def scenario():
        alice, bob = await clients(stack, keyring, "alice", "bob")
        conversation = await members_conversation(alice, bob)
        state = bob.state(conversation)
        mallory = keyring["mallory"]
        hashes = key_hashes(mallory.signing_key.public_key(), mallory.encryption_key.public_key())
        self_invited = signed_statement(
            conversation, mallory, "mallory", "add", "mallory", state.roster_epoch, hashes
        )
        event, key = forged_record(
            conversation,
            "mallory",
            mallory,
            state,
            {n: keyring[n] for n in ("alice", "bob", "mallory")},
            changes=[self_invited],
        )
        attack(stack, "publish", usernames=["alice", "bob"], event=event)
        for honest in (alice, bob):
            await refusal(honest, "signer_not_member")
            assert honest.state(conversation).current_epoch == 1
        before = last_order(stack, conversation)
        await chat_carries_on(alice, bob, conversation)
        assert_unreadable(
            stack, conversation, before, attackers_keys(stack, conversation, mallory, [key])
        )
        await close(alice, bob)

    asyncio.run(scenario())


def test_a_record_that_drops_a_member_silently_is_refused(stack, keyring):
    async def scenario():
        alice, bob, carol = await clients(stack, keyring, "alice", "bob", "carol")
        conversation = await members_conversation(alice, bob, carol)
        # the server ends carol's membership without her signed leave and asks alice
        attack(
            stack, "drop_from_request", conversation=conversation, dropped="carol", asked="alice"
        )
        assert "carol" in (await refusal(alice, "members_mismatch")).message
        assert _epochs_in_database(stack, conversation) == [1]
        restore(stack, conversation, ["alice", "bob", "carol"])
        # a member (bob's key, as if bob colluded) signs a record that drops carol: the
        # others refuse it, whoever signed it
        event, _ = forged_record(
            conversation,
            "bob",
            keyring["bob"],
            alice.state(conversation),
            {n: keyring[n] for n in ("alice", "bob")},
        )
        attack(stack, "publish", usernames=["alice", "carol"], event=event)
        await refusal(alice, "members_mismatch")
        assert alice.state(conversation).current_epoch == 1
        await chat_carries_on(alice, carol, conversation)
        assert (await bob.receive_text(conversation)).sender == "alice"
        await close(alice, bob, carol)

    asyncio.run(scenario())


class GarbageKeyMaker(ChatClient):
    """A member who, asked for a key, wraps random bytes for everyone but themselves."""

    async def _make_epoch(self, request: dict) -> None:
        key = wrapping.new_epoch_key()
        members = []
        for member in request["members"]:
            certificate = self.trust.verify_certificate(
                unb64(member["certificate"]), username=member["username"], kind="encryption"
            )
            blob = (
                wrapping.oaep_encrypt(certificate.public_key(), key)
                if member["username"] == self.username
                else os.urandom(len(wrapping.oaep_encrypt(certificate.public_key(), key)))
            )
            members.append((member["username"], member["serial"], blob))
        changes = [Statement.from_json(c) for c in request["changes"]]
        record = encoding.distribution_record(
            conversation_id=request["conversation"],
            epoch=request["epoch"],
            previous_epoch=request["previous_epoch"],
            roster_epoch=request["roster_epoch"],
            key_origin="members",
            signer=self.username,
            signer_serial=self.keys.signing_serial,
            members=members,
            changes=[c.signed_bytes(request["conversation"]) for c in changes],
        )
        await self.request(
            "epoch.submit",
            conversation=request["conversation"],
            epoch=request["epoch"],
            signer_serial=self.keys.signing_serial,
            signature=base64.b64encode(signing.sign(self.keys.signing_key, record)).decode(),
            members=[
                {"username": u, "serial": s, "wrapped_key": base64.b64encode(w).decode()}
                for u, s, w in members
            ],
        )


def test_garbage_keys_from_a_member_are_reported_and_replaced(stack, keyring):
    async def scenario():
        alice, bob, carol = await clients(stack, keyring, "alice", "bob", "carol")
        (mallory,) = await clients(stack, keyring, "mallory", kind=GarbageKeyMaker)
        conversation = await members_conversation(alice, bob, mallory)
        invitation = await mallory.invite(conversation, "carol")  # mallory is asked for epoch 2
        await carol.accept_invitation(invitation)  # waits for a key that opens: epoch 3
        for honest in (alice, bob, carol):
            await honest.wait_for_epoch(conversation, 3)
            assert 2 not in honest.state(conversation).epoch_keys
        assert any(
            getattr(p, "code", "") == "key_does_not_open"
            for c in (alice, bob, carol)
            for p in c.problems
        )
        with sqlite3.connect(stack.database_path) as db:
            maker = db.execute(
                "SELECT signer FROM chat_keyepoch WHERE conversation_id = ? AND number = 3",
                (conversation.replace("-", ""),),
            ).fetchone()[0]
        assert maker in ("alice", "bob", "carol")  # a member who reported it made the new key
        await chat_carries_on(alice, bob, conversation)
        assert (await carol.receive_text(conversation)).text.startswith("alice")
        await close(alice, bob, carol, mallory)

    asyncio.run(scenario())


def test_a_members_real_key_change_waits_for_acceptance_then_the_chat_goes_on(stack, keyring):
    async def scenario():
        alice, carol = await clients(stack, keyring, "alice", "carol")
        conversation = await members_conversation(alice, carol)
        await chat_carries_on(alice, carol, conversation)
        await carol.register_keys(rsa_bits=2048)  # carol's new device: new keys, a new epoch
        problem = await refusal(alice, "key_changed")  # alice is asked, and holds back
        assert problem.username == "carol" and problem.kind in ("signing", "encryption")
        assert _epochs_in_database(stack, conversation) == [1]
        await alice.accept_key_change("carol")  # after comparing safety numbers
        await carol.wait_for_epoch(conversation, 2)
        await chat_carries_on(alice, carol, conversation)
        keyring["carol"] = carol.keys
        await close(alice, carol)

    asyncio.run(scenario())


def test_a_forged_invitation_is_reported_and_a_real_one_is_not(stack, keyring):
    async def scenario():
        alice, bob, carol = await clients(stack, keyring, "alice", "bob", "carol")
        conversation = await members_conversation(alice, bob)
        carol_keys = keyring["carol"]
        hashes = key_hashes(
            carol_keys.signing_key.public_key(), carol_keys.encryption_key.public_key()
        )
        roster = alice.state(conversation).roster_epoch
        by_mallory = signed_statement(
            conversation, keyring["mallory"], "mallory", "add", "carol", roster, hashes
        )
        invitation = {
            "id": 999999,
            "conversation": conversation,
            "conversation_title": "",
            "inviter": "alice",
            "invitee": "carol",
            "status": "pending",
            "created": "2026-11-26T00:00:00+00:00",
            "statement": by_mallory.to_json(),
        }
        attack(
            stack,
            "publish",
            usernames=["carol"],
            event={"type": "invite.received", "invitation": invitation},
        )
        await refusal(carol, "bad_statement")
        carol.problems.clear()
        await alice.invite(conversation, "carol")  # the real one: alice's signed addition
        await carol.next_event(
            "invite.received", predicate=lambda e: e["invitation"]["id"] != 999999
        )
        assert not carol.problems
        await close(alice, bob, carol)

    asyncio.run(scenario())
