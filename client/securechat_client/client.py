"""ChatClient: log in, certify keys, chat. It verifies everything the server relays:
certificates against the CA, key records, message signatures, replays."""

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import dsa

from client.securechat_client.connection import Connection
from client.securechat_client.conversation import ConversationState, DecryptedMessage, b64, unb64
from client.securechat_client.errors import ProtocolError, TrustError
from client.securechat_client.http import HttpSession
from client.securechat_client.keystore import KeyPair, generate_key_pair, save_private_keys
from client.securechat_client.trust import TrustStore, public_spki
from cryptokit import encoding, signing, wrapping
from cryptokit.keys import spki_der
from cryptokit.pop import answer_challenge

SERVER_NAME = "SecureChat server"


class ChatClient:
    def __init__(
        self, base_url: str, *, keys_dir: Path | None = None, pins_path: Path | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.http = HttpSession(self.base_url)
        self.keys_dir, self.pins_path = keys_dir, pins_path
        self.username = ""
        self.keys: KeyPair | None = None
        self.trust: TrustStore | None = None
        self.authority: dict = {}
        self.connection: Connection | None = None
        self.conversations: dict[str, ConversationState] = {}
        self.inbox: list[dict] = []
        self.changed = asyncio.Condition()
        self.problems: list[Exception] = []  # refused records and failures, for the user to see
        self.pump: asyncio.Task | None = None

    # --- HTTP: login, trust, keys -------------------------------------------------

    async def login(self, username: str, password: str) -> None:
        await self.http.login(username, password)
        self.username = username

    async def load_trust(self) -> None:
        self.authority = await self.http.get_json("/api/keys/ca/")
        self.trust = TrustStore.from_authority(self.authority, pins_path=self.pins_path)
        await self.trust.refresh_revocations(self.http)

    async def register_keys(self, signing_algorithm: str = "ed25519", rsa_bits: int = 3072) -> dict:
        """Make a key pair here, prove possession, get both keys certified."""
        parameters = None
        if signing_algorithm == "dsa":
            p, q, g = (int(self.authority["dsa_parameters"][k], 16) for k in "pqg")
            parameters = dsa.DSAParameterNumbers(p, q, g).parameters()
        keys = generate_key_pair(signing_algorithm, dsa_parameters=parameters, rsa_bits=rsa_bits)
        return await self.certify(keys)

    async def certify(self, keys: KeyPair) -> dict:
        signing_spki = spki_der(keys.signing_key.public_key())
        encryption_spki = spki_der(keys.encryption_key.public_key())
        body = {"signing_key": b64(signing_spki), "encryption_key": b64(encryption_spki)}
        challenge = await self.http.post_json("/api/keys/challenge/", body)
        signature, secret = answer_challenge(
            username=self.username,
            nonce=unb64(challenge["nonce"]),
            encrypted_secret=unb64(challenge["encrypted_secret"]),
            signing_key=keys.signing_key,
            encryption_key=keys.encryption_key,
        )
        issued = await self.http.post_json(
            "/api/keys/register/",
            {
                **body,
                "challenge_id": challenge["challenge_id"],
                "signature": b64(signature),
                "secret": b64(secret),
            },
        )
        for kind in ("signing", "encryption"):
            self.trust.verify_certificate(
                unb64(issued[kind]["certificate"]), username=self.username, kind=kind
            )
        keys.signing_serial = issued["signing"]["serial"]
        keys.encryption_serial = issued["encryption"]["serial"]
        self.use_keys(keys)
        if self.keys_dir:
            save_private_keys(self.keys_dir / self.username, keys)
        return issued

    def use_keys(self, keys: KeyPair) -> None:
        self.keys = keys

    # --- the socket and its events ------------------------------------------------

    async def connect(self) -> None:
        ws_url = self.base_url.replace("http", "ws", 1) + "/ws/chat/"
        self.connection = await Connection.open(
            ws_url, origin=self.base_url, cookie=self.http.cookie_header()
        )
        self.pump = asyncio.create_task(self._pump())
        listed = await self.connection.request("conversation.list")
        for conversation in listed["conversations"]:
            self._track(conversation)

    async def close(self) -> None:
        if self.pump:
            self.pump.cancel()
        if self.connection:
            await self.connection.close()
        await self.http.close()

    async def request(self, type_: str, **fields) -> dict:
        return await self.connection.request(type_, **fields)

    def _track(self, conversation: dict) -> ConversationState:
        state = self.conversations.setdefault(
            conversation["id"], ConversationState(conversation["id"])
        )
        state.key_origin = conversation["key_origin"]
        state.created_by = conversation["created_by"]
        state.last_sequence = max(state.last_sequence, conversation.get("my_last_sequence", 0))
        state.known_members = [m["username"] for m in conversation["members"]]
        return state

    async def _pump(self) -> None:
        """Handle key events as they come, then queue every event for the user."""
        while True:
            event = await self.connection.next_event(timeout=None)
            try:
                await self._handle(event)
            except TrustError as problem:
                self.problems.append(problem)
            except ProtocolError:
                pass  # e.g. another member answered an epoch request first
            except Exception as failure:  # keep pumping: one bad event must not stop the client
                self.problems.append(failure)
            async with self.changed:
                self.inbox.append(event)
                self.changed.notify_all()

    async def _handle(self, event: dict) -> None:
        kind = event["type"]
        if kind == "conversation.created":
            self._track(event["conversation"])
        elif kind == "epoch.new":
            await self._accept_epoch(event["epoch"])
        elif kind == "epoch.request":
            await self._make_epoch(event)

    async def _accept_epoch(self, record: dict) -> None:
        state = self.conversations.setdefault(
            record["conversation"], ConversationState(record["conversation"])
        )
        if record["signer"] == "server":
            body, certificate = await self.trust.certificate(
                self.http, record["signer_serial"], username=SERVER_NAME, kind="signing"
            )
            if body["kind"] != "server-signing":
                raise TrustError("bad_distribution", "Not signed by the server's key.")
        else:
            body, certificate = await self.trust.certificate(
                self.http, record["signer_serial"], username=record["signer"], kind="signing"
            )
        state.accept_epoch(
            record,
            me=self.username,
            my_encryption_key=self.keys.encryption_key,
            signer_public_key=certificate.public_key(),
            signer_is_server=record["signer"] == "server",
        )

    async def _make_epoch(self, request: dict) -> None:
        """Members mode: make the next key here, wrap it for each verified member."""
        key = wrapping.new_epoch_key()
        members = []
        for member in request["members"]:
            certificate = self.trust.verify_certificate(
                unb64(member["certificate"]), username=member["username"], kind="encryption"
            )
            self.trust.check_not_revoked(member["serial"])
            members.append(
                (
                    member["username"],
                    member["serial"],
                    wrapping.oaep_encrypt(certificate.public_key(), key),
                )
            )
        record = encoding.distribution_record(
            conversation_id=request["conversation"],
            epoch=request["epoch"],
            key_origin="members",
            signer=self.username,
            signer_serial=self.keys.signing_serial,
            members=members,
        )
        await self.request(
            "epoch.submit",
            conversation=request["conversation"],
            epoch=request["epoch"],
            signer_serial=self.keys.signing_serial,
            signature=b64(signing.sign(self.keys.signing_key, record)),
            members=[{"username": u, "serial": s, "wrapped_key": b64(w)} for u, s, w in members],
        )

    async def next_event(
        self, type_: str | None = None, *, timeout: float = 10, predicate=None
    ) -> dict:
        """The next queued event of `type_` (others stay queued)."""

        def match():
            for index, event in enumerate(self.inbox):
                if (type_ is None or event["type"] == type_) and (
                    predicate is None or predicate(event)
                ):
                    return self.inbox.pop(index)
            return None

        async def wait():
            async with self.changed:
                while (found := match()) is None:
                    await self.changed.wait()
                return found

        return await asyncio.wait_for(wait(), timeout)

    async def wait_for_epoch(
        self, conversation_id: str, epoch: int | None = None, timeout: float = 10
    ) -> int:
        """Wait until this client holds the key of `epoch` (or of any epoch)."""

        async def wait():
            async with self.changed:
                while True:
                    keys = self.conversations.get(conversation_id, ConversationState("")).epoch_keys
                    if (epoch is None and keys) or epoch in keys:
                        return epoch or max(keys)
                    await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    def state(self, conversation_id: str) -> ConversationState:
        return self.conversations[conversation_id]

    # --- conversations and messages -----------------------------------------------

    async def create_conversation(
        self, usernames: list[str], title: str = "", key_origin: str = "server"
    ) -> str:
        reply = await self.request(
            "conversation.create", usernames=usernames, title=title, key_origin=key_origin
        )
        conversation_id = reply["conversation"]["id"]
        self._track(reply["conversation"])
        await self.wait_for_epoch(conversation_id, 1)
        return conversation_id

    async def invite(self, conversation_id: str, username: str) -> int:
        reply = await self.request("invite.send", conversation=conversation_id, username=username)
        return reply["invitation"]["id"]

    async def accept_invitation(self, invitation_id: int) -> str:
        reply = await self.request("invite.accept", invitation=invitation_id)
        joined = reply["conversation"]
        state = self._track(joined)
        await self.wait_for_epoch(state.id, joined["epoch"] + (1 if joined["epoch_pending"] else 0))
        return state.id

    async def decline_invitation(self, invitation_id: int) -> None:
        await self.request("invite.decline", invitation=invitation_id)

    async def leave(self, conversation_id: str) -> None:
        await self.request("conversation.leave", conversation=conversation_id)

    async def send_text(self, conversation_id: str, text: str) -> dict:
        body = self.state(conversation_id).encrypt(
            text,
            sender=self.username,
            signing_key=self.keys.signing_key,
            signing_serial=self.keys.signing_serial,
        )
        return await self.request("message.send", **body)

    async def open_message(self, message: dict, *, check_replay: bool = True) -> DecryptedMessage:
        """Verify the sender's certificate and signature, then decrypt."""
        body, certificate = await self.trust.certificate(
            self.http, message["sender_serial"], username=message["sender"], kind="signing"
        )
        if body["kind"] != "signing":
            raise TrustError("untrusted_certificate", "Not a signing certificate.")
        self.trust.pin(message["sender"], public_spki(certificate))
        state = self.conversations[message["conversation"]]
        if message["epoch"] not in state.epoch_keys:
            await self.fetch_epochs(state.id, [message["epoch"]])
        if not check_replay:
            saved = dict(state.sender_sequences)
            state.sender_sequences.clear()
            try:
                return state.decrypt(message, sender_public_key=certificate.public_key())
            finally:
                state.sender_sequences = saved
        return state.decrypt(message, sender_public_key=certificate.public_key())

    async def fetch_epochs(self, conversation_id: str, numbers: list[int]) -> None:
        listed = await self.request("epoch.get", conversation=conversation_id, epochs=numbers)
        for record in listed["epochs"]:
            await self._accept_epoch(record)

    async def receive_text(
        self, conversation_id: str | None = None, timeout: float = 10
    ) -> DecryptedMessage:
        """The next new message (duplicates skipped), verified and decrypted, then acked."""
        while True:
            event = await self.next_event(
                "message.new",
                timeout=timeout,
                predicate=lambda e: (
                    conversation_id is None or e["message"]["conversation"] == conversation_id
                ),
            )
            message = event["message"]
            state = self.conversations.get(message["conversation"])
            if state is None or state.is_duplicate(message["order"]):
                continue
            if message["sender"] == self.username:
                state.seen_orders.add(message["order"])  # my own, echoed to all my tabs
                continue
            opened = await self.open_message(message)
            await self.ack_delivery(message["conversation"], message["order"])
            return opened

    async def ack_delivery(self, conversation_id: str, up_to: int) -> None:
        await self.request("delivery.ack", conversation=conversation_id, up_to=up_to)

    async def history(self, conversation_id: str, since: int = 0, limit: int = 200) -> list:
        """Every stored message this client may read, opened; refused ones as TrustError."""
        reply = await self.request(
            "conversation.history", conversation=conversation_id, since=since, limit=limit
        )
        opened: list[DecryptedMessage | TrustError] = []
        for message in reply["messages"]:
            try:
                opened.append(await self.open_message(message, check_replay=False))
            except TrustError as problem:
                opened.append(problem)
        return opened
