"""One conversation as this client sees it: the verified chain of key records (who was a
member in each epoch), epoch keys, encryption and decryption, replay and duplicate
detection. Pure logic, no I/O: certificates, pins and statement signatures are checked
by the caller (client.py) before it hands records and statements in here."""

import base64
import json
import time
import uuid
from dataclasses import dataclass, field

from cryptokit import encoding, signing, wrapping
from cryptokit.errors import CryptoError
from cryptokit.membership import MembershipError, Statement, next_members, roster_after

from .errors import TrustError

BODY_VERSION = 1


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def encode_body(text: str) -> bytes:
    """The plaintext of a message: a versioned JSON object, UTF-8 (protocol.md §3.3)."""
    return json.dumps({"v": BODY_VERSION, "text": text}, ensure_ascii=False).encode()


def decode_body(plaintext: bytes) -> str:
    try:
        body = json.loads(plaintext.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TrustError("bad_body", "The decrypted message is not a JSON body.") from None
    if not isinstance(body, dict) or body.get("v") != BODY_VERSION:
        raise TrustError("bad_body", "Unknown message body version.")
    if not isinstance(body.get("text"), str):
        raise TrustError("bad_body", "The message body has no text.")
    return body["text"]


@dataclass(frozen=True)
class DecryptedMessage:
    conversation: str
    order: int
    epoch: int
    sender: str
    text: str
    timestamp_ms: int
    sequence: int


@dataclass(frozen=True)
class EpochView:
    """What this client verified about one epoch."""

    number: int
    previous: int
    roster: int
    signer: str
    members: frozenset[str]  # every member, with or without a key


@dataclass
class ConversationState:
    id: str
    key_origin: str | None = None  # fixed once known: never changes for a conversation
    created_by: str = ""
    owner: str = ""  # the signer of the first record, once verified
    epochs: dict[int, EpochView] = field(default_factory=dict)
    epoch_keys: dict[int, bytes] = field(default_factory=dict)
    last_sequence: int = 0  # of this device (this client session)
    last_order: int = 0
    seen_orders: set[int] = field(default_factory=set)
    sender_sequences: dict[tuple[str, str], int] = field(default_factory=dict)  # (sender, device)

    # --- the key-origin and membership rules (protocol.md §5) ---------------------

    def fix_key_origin(self, origin: str) -> None:
        """The first origin this client hears of is the conversation's for good."""
        if self.key_origin is None:
            self.key_origin = origin
        elif origin != self.key_origin:
            raise TrustError(
                "origin_changed",
                f"This conversation's keys come from its {self.key_origin}; "
                f"a record claims {origin}.",
            )

    @property
    def newest(self) -> EpochView | None:
        return self.epochs[max(self.epochs)] if self.epochs else None

    @property
    def roster_epoch(self) -> int:
        """The roster a new membership statement is made against."""
        return self.newest.roster if self.newest else 0

    def expected_transition(
        self, *, epoch: int, previous: int, signer: str, statements: list[Statement]
    ) -> tuple[frozenset[str] | None, int | None]:
        """(the members and roster a members-mode record must name, from the records this
        client verified), or (None, None) when this client has no previous record to
        check against: its first record, trusted on first use. Refuses a signer who may
        not make the key."""
        if previous == 0:
            if epoch != 1 or statements:
                raise TrustError("bad_distribution", "Only epoch 1 starts a chain.")
            if signer != (self.owner or self.created_by):
                raise TrustError("signer_not_member", f"{signer} did not create it.")
            return None, 1
        before = self.epochs.get(previous)
        if before is None:
            if self.newest is not None and epoch > self.newest.number:
                # The caller fetches missing links first; still missing means a gap.
                raise TrustError("chain_gap", f"Epoch {epoch} follows one I never saw.")
            return None, None  # an old record, before this client's first: for reading
        forks = [
            n
            for n, view in self.epochs.items()
            if n != epoch and (previous < n < epoch or view.previous == previous)
        ]
        if forks:
            raise TrustError("chain_gap", f"Epoch {epoch} forks the chain I verified.")
        try:
            members = next_members(
                before.members,
                owner=self.owner or self.created_by,
                roster_epoch=before.roster,
                statements=statements,
            )
        except MembershipError as exc:
            raise TrustError(exc.code, str(exc)) from None
        departed = before.members - members
        if signer not in before.members or signer in departed:
            raise TrustError("signer_not_member", f"{signer} may not make this key.")
        return members, roster_after(epoch, before.roster, changes_members=bool(statements))

    def accept_epoch(
        self,
        record: dict,
        *,
        me: str,
        my_encryption_key,
        signer_public_key,
        signer_is_server: bool,
        statements: list[Statement] = (),
    ) -> None:
        """Verify a distribution record (protocol.md §4.2 epoch) and keep my key from it.
        `statements` are its membership statements, their signatures already checked."""
        self.fix_key_origin(record["key_origin"])
        members = [
            (m["username"], m["serial"], unb64(m["wrapped_key"]) if m["serial"] else b"")
            for m in record["members"]
        ]
        try:
            data = encoding.distribution_record(
                conversation_id=record["conversation"],
                epoch=record["epoch"],
                previous_epoch=record["previous_epoch"],
                roster_epoch=record["roster_epoch"],
                key_origin=record["key_origin"],
                signer=record["signer"],
                signer_serial=record["signer_serial"],
                members=members,
                changes=[s.signed_bytes(self.id) for s in statements],
            )
            signing.verify(signer_public_key, unb64(record["signature"]), data)
        except (CryptoError, ValueError):
            raise TrustError("bad_distribution", "The key record's signature fails.") from None
        names = frozenset(username for username, _, _ in members)
        if record["key_origin"] == "server":
            if record["signer"] != "server" or not signer_is_server:
                raise TrustError("bad_distribution", "A server-mode key must come from the server.")
        else:
            self._check_members_record(record, names, statements)
        view = EpochView(
            number=record["epoch"],
            previous=record["previous_epoch"],
            roster=record["roster_epoch"],
            signer=record["signer"],
            members=names,
        )
        known = self.epochs.get(view.number)
        if known is not None and known != view:
            raise TrustError("bad_distribution", f"Two different records for epoch {view.number}.")
        # The record is a valid link of the chain even if my own key turns out broken.
        self.epochs[view.number] = view
        if record["epoch"] == 1 and record["key_origin"] == "members":
            self.owner = record["signer"]
        mine = [wrapped for username, serial, wrapped in members if username == me and serial]
        if mine:
            try:
                self.epoch_keys[view.number] = wrapping.oaep_decrypt(my_encryption_key, mine[0])
            except CryptoError:
                raise TrustError("key_does_not_open", "My wrapped key does not open.") from None

    def _check_members_record(
        self, record: dict, names: frozenset[str], statements: list[Statement]
    ) -> None:
        if record["signer"] == "server":
            raise TrustError("bad_distribution", "The server cannot make a members-mode key.")
        expected, roster = self.expected_transition(
            epoch=record["epoch"],
            previous=record["previous_epoch"],
            signer=record["signer"],
            statements=statements,
        )
        if expected is not None and names != expected:
            extra, missing = sorted(names - expected), sorted(expected - names)
            raise TrustError(
                "members_mismatch",
                f"Epoch {record['epoch']} adds {extra or 'nobody'} and drops "
                f"{missing or 'nobody'} without a member's signature.",
            )
        if roster is not None and record["roster_epoch"] != roster:
            raise TrustError("bad_distribution", "The record's roster does not follow.")
        if record["signer"] not in names:
            raise TrustError("signer_not_member", f"{record['signer']} is not a member.")

    @property
    def current_epoch(self) -> int:
        return max(self.epoch_keys) if self.epoch_keys else 0

    # --- messages -----------------------------------------------------------------

    def encrypt(
        self,
        text: str,
        *,
        sender: str,
        device: str,
        signing_key,
        signing_serial: str,
        client_id: str = "",
    ) -> dict:
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
            device=device,
            sequence=self.last_sequence,
            timestamp_ms=timestamp,
        )
        iv, ciphertext = wrapping.aes_gcm_encrypt(self.epoch_keys[epoch], encode_body(text), header)
        signed = encoding.message_signed_bytes(header=header, iv=iv, ciphertext=ciphertext)
        return {
            "conversation": self.id,
            "client_id": client_id or str(uuid.uuid4()),
            "epoch": epoch,
            "sequence": self.last_sequence,
            "timestamp_ms": timestamp,
            "sender_serial": signing_serial,
            "device": device,
            "iv": b64(iv),
            "ciphertext": b64(ciphertext),
            "signature": b64(signing.sign(signing_key, signed)),
        }

    def is_duplicate(self, order: int) -> bool:
        return order in self.seen_orders

    def decrypt(self, message: dict, *, sender_public_key) -> DecryptedMessage:
        """Verify the sender's signature, refuse replays, decrypt."""
        sender, sequence = message["sender"], message["sequence"]
        counter = (sender, message["device"])
        if sequence <= self.sender_sequences.get(counter, 0):
            raise TrustError("replayed", f"{sender}'s device already used sequence {sequence}.")
        view = self.epochs.get(message["epoch"])
        if view is not None and sender not in view.members:
            raise TrustError("not_member", f"{sender} was not a member in epoch {view.number}.")
        header = encoding.message_header(
            conversation_id=self.id,
            epoch=message["epoch"],
            sender=sender,
            sender_serial=message["sender_serial"],
            device=message["device"],
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
        text = decode_body(plaintext)
        self.sender_sequences[counter] = sequence
        self.seen_orders.add(message["order"])
        self.last_order = max(self.last_order, message["order"])
        return DecryptedMessage(
            self.id,
            message["order"],
            message["epoch"],
            sender,
            text,
            message["timestamp_ms"],
            sequence,
        )
