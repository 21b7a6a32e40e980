"""One conversation as this client sees it: verified epoch keys and member lists,
encryption and decryption, replay and duplicate detection. Pure logic, no I/O."""

import base64
import time
import uuid
from dataclasses import dataclass, field

from client.securechat_client.errors import TrustError
from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass(frozen=True)
class DecryptedMessage:
    conversation: str
    order: int
    epoch: int
    sender: str
    text: str
    timestamp_ms: int
    sequence: int


@dataclass
class ConversationState:
    id: str
    key_origin: str = "server"
    created_by: str = ""
    known_members: list[str] = field(default_factory=list)  # as the server listed them
    epoch_keys: dict[int, bytes] = field(default_factory=dict)
    epoch_members: dict[int, list[str]] = field(default_factory=dict)
    last_sequence: int = 0
    last_order: int = 0
    seen_orders: set[int] = field(default_factory=set)
    sender_sequences: dict[str, int] = field(default_factory=dict)

    def accept_epoch(
        self, record: dict, *, me: str, my_encryption_key, signer_public_key, signer_is_server: bool
    ) -> None:
        """Verify a distribution record (protocol.md §4.2 epoch) and keep my key from it."""
        members = [(m["username"], m["serial"], unb64(m["wrapped_key"])) for m in record["members"]]
        data = encoding.distribution_record(
            conversation_id=record["conversation"],
            epoch=record["epoch"],
            key_origin=record["key_origin"],
            signer=record["signer"],
            signer_serial=record["signer_serial"],
            members=members,
        )
        try:
            signing.verify(signer_public_key, unb64(record["signature"]), data)
        except CryptoError:
            raise TrustError("bad_distribution", "The key record's signature fails.") from None
        if record["key_origin"] == "server":
            if record["signer"] != "server" or not signer_is_server:
                raise TrustError("bad_distribution", "A server-mode key must come from the server.")
        else:
            self._check_member_signer(record["signer"], record["epoch"], me)
        self.key_origin = record["key_origin"]
        self.epoch_members[record["epoch"]] = [username for username, _, _ in members]
        mine = [wrapped for username, _, wrapped in members if username == me]
        if mine:
            try:
                self.epoch_keys[record["epoch"]] = wrapping.oaep_decrypt(my_encryption_key, mine[0])
            except CryptoError:
                raise TrustError("bad_distribution", "My wrapped key does not open.") from None

    def _check_member_signer(self, signer: str, number: int, me: str) -> None:
        """Members mode: only a current member may hand out the next key, so the server
        cannot add someone silently. Current = the members of the newest epoch this
        client verified; for epoch 1 the creator; for a newcomer's first epoch, the
        members the server listed when it joined (it has nothing better)."""
        earlier = [n for n in self.epoch_members if n < number]
        if earlier:
            current = self.epoch_members[max(earlier)]
        elif number == 1:
            current = [self.created_by]
        else:
            current = [m for m in self.known_members if m != me]
        if signer not in current:
            raise TrustError("signer_not_member", f"{signer} is not a member who may add keys.")

    @property
    def current_epoch(self) -> int:
        return max(self.epoch_keys) if self.epoch_keys else 0

    def encrypt(self, text: str, *, sender: str, signing_key, signing_serial: str) -> dict:
        """A `message.send` body for `text` under the newest epoch key."""
        epoch = self.current_epoch
        if not epoch:
            raise TrustError("no_epoch_key", "No key for this conversation yet.")
        self.last_sequence += 1
        timestamp = int(time.time() * 1000)
        header = encoding.message_header(
            conversation_id=self.id,
            epoch=epoch,
            sender=sender,
            sender_serial=signing_serial,
            sequence=self.last_sequence,
            timestamp_ms=timestamp,
        )
        iv, ciphertext = wrapping.aes_gcm_encrypt(self.epoch_keys[epoch], text.encode(), header)
        signed = encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext)
        return {
            "conversation": self.id,
            "client_id": str(uuid.uuid4()),
            "epoch": epoch,
            "sequence": self.last_sequence,
            "timestamp_ms": timestamp,
            "sender_serial": signing_serial,
            "iv": b64(iv),
            "ciphertext": b64(ciphertext),
            "signature": b64(signing.sign(signing_key, signed)),
        }

    def is_duplicate(self, order: int) -> bool:
        return order in self.seen_orders

    def decrypt(self, message: dict, *, sender_public_key) -> DecryptedMessage:
        """Verify the sender's signature, refuse replays, decrypt."""
        sender, sequence = message["sender"], message["sequence"]
        if sequence <= self.sender_sequences.get(sender, 0):
            raise TrustError("replayed", f"{sender} already used sequence {sequence}.")
        header = encoding.message_header(
            conversation_id=self.id,
            epoch=message["epoch"],
            sender=sender,
            sender_serial=message["sender_serial"],
            sequence=sequence,
            timestamp_ms=message["timestamp_ms"],
        )
        iv, ciphertext = unb64(message["iv"]), unb64(message["ciphertext"])
        signed = encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext)
        try:
            signing.verify(sender_public_key, unb64(message["signature"]), signed)
        except CryptoError:
            raise TrustError("bad_signature", "The message signature does not verify.") from None
        key = self.epoch_keys.get(message["epoch"])
        if key is None:
            raise TrustError("no_epoch_key", f"No key for epoch {message['epoch']}.")
        try:
            plaintext = wrapping.aes_gcm_decrypt(key, iv, ciphertext, header)
        except CryptoError as exc:
            raise TrustError("decrypt_failed", str(exc)) from None
        self.sender_sequences[sender] = sequence
        self.seen_orders.add(message["order"])
        self.last_order = max(self.last_order, message["order"])
        return DecryptedMessage(
            self.id,
            message["order"],
            message["epoch"],
            sender,
            plaintext.decode(),
            message["timestamp_ms"],
            sequence,
        )
