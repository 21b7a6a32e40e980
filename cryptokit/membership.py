"""Members key origin: who may be in the next epoch. The rule is written once here and
applied by the member who makes a key (before wrapping) and by every member who
receives it (before accepting), so a server cannot add or drop anyone on its own.

    next members = members of the previous record
                   + subjects of "add" statements signed by a member of that record
                   - subjects of "leave" statements signed by themselves
                   - subjects of "remove" statements signed by the owner

Every statement names the roster it was made against (`roster_epoch`: the epoch whose
record last changed the member list) and is only valid against that roster, so it
applies once: the record that applies it starts a new roster, and a replay of it is
stale. This is MLS's "proposals are bound to their epoch, a commit applies them",
reduced to what this product needs. Signatures are checked by the caller (it holds
the certificates and the pins); this module checks the set arithmetic.
"""

import base64
import dataclasses
import hashlib
import os
from dataclasses import dataclass

from cryptokit import encoding, signing
from cryptokit.keys import spki_der


class MembershipError(ValueError):
    """A transition the rule does not allow; `code` is stable, the text is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Statement:
    """A signed membership change, as carried in JSON (protocol.md, "statement")."""

    action: str
    subject: str
    actor: str
    actor_serial: str
    roster_epoch: int
    nonce: bytes
    signature: bytes
    subject_signing_sha256: bytes = b""
    subject_encryption_sha256: bytes = b""

    @classmethod
    def create(
        cls,
        conversation_id: str,
        signing_key,
        *,
        action: str,
        subject: str,
        actor: str,
        actor_serial: str,
        roster_epoch: int,
        key_hashes: tuple[bytes, bytes] = (b"", b""),
    ) -> "Statement":
        """A new statement with a fresh nonce, signed by the actor's `signing_key`."""
        unsigned = cls(
            action=action,
            subject=subject,
            actor=actor,
            actor_serial=actor_serial,
            roster_epoch=roster_epoch,
            nonce=new_nonce(),
            signature=b"",
            subject_signing_sha256=key_hashes[0],
            subject_encryption_sha256=key_hashes[1],
        )
        data = unsigned.signed_bytes(conversation_id)
        return dataclasses.replace(unsigned, signature=signing.sign(signing_key, data))

    def signed_bytes(self, conversation_id: str) -> bytes:
        return encoding.membership_statement(
            conversation_id=conversation_id,
            key_origin="members",
            roster_epoch=self.roster_epoch,
            action=self.action,
            subject=self.subject,
            subject_signing_sha256=self.subject_signing_sha256,
            subject_encryption_sha256=self.subject_encryption_sha256,
            actor=self.actor,
            actor_serial=self.actor_serial,
            nonce=self.nonce,
        )

    def to_json(self) -> dict:
        return {
            "action": self.action,
            "subject": self.subject,
            "subject_signing_sha256": _b64(self.subject_signing_sha256),
            "subject_encryption_sha256": _b64(self.subject_encryption_sha256),
            "actor": self.actor,
            "actor_serial": self.actor_serial,
            "roster_epoch": self.roster_epoch,
            "nonce": _b64(self.nonce),
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Statement":
        try:
            return cls(
                action=data["action"],
                subject=data["subject"],
                actor=data["actor"],
                actor_serial=data["actor_serial"],
                roster_epoch=int(data["roster_epoch"]),
                nonce=base64.b64decode(data["nonce"], validate=True),
                signature=base64.b64decode(data["signature"], validate=True),
                subject_signing_sha256=base64.b64decode(data["subject_signing_sha256"]),
                subject_encryption_sha256=base64.b64decode(data["subject_encryption_sha256"]),
            )
        except (KeyError, TypeError, ValueError):
            raise MembershipError("bad_statement", "A membership statement is malformed.") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_nonce() -> bytes:
    return os.urandom(16)


def key_hashes(signing_public_key, encryption_public_key) -> tuple[bytes, bytes]:
    """SHA-256 of both SPKIs: how an addition names the invitee's keys."""
    return tuple(
        hashlib.sha256(spki_der(key)).digest()
        for key in (signing_public_key, encryption_public_key)
    )


def roster_after(epoch: int, previous_roster: int, *, changes_members: bool) -> int:
    """The roster a record belongs to: its own epoch when it changes the member list (and
    for the first record), else the roster of the record it follows."""
    return epoch if changes_members or previous_roster == 0 else previous_roster


def next_members(
    members: frozenset[str] | set[str],
    *,
    owner: str,
    roster_epoch: int,
    statements: list[Statement],
) -> frozenset[str]:
    """The member list a record applying `statements` to `members` must name."""
    added: set[str] = set()
    departed: set[str] = set()
    for statement in statements:
        if statement.roster_epoch != roster_epoch:
            raise MembershipError(
                "stale_statement",
                f"{statement.actor}'s {statement.action} of {statement.subject} was made "
                f"for roster {statement.roster_epoch}, not {roster_epoch}.",
            )
        if statement.actor not in members:
            raise MembershipError(
                "signer_not_member", f"{statement.actor} is not a member who may change it."
            )
        touched = added | departed
        if statement.subject in touched:
            raise MembershipError("bad_statement", f"{statement.subject} is changed twice.")
        if statement.action == "add":
            if statement.subject in members:
                raise MembershipError("bad_statement", f"{statement.subject} is already in.")
            added.add(statement.subject)
        elif statement.action == "leave":
            if statement.actor != statement.subject or statement.subject not in members:
                raise MembershipError("bad_statement", "Only a member signs their own leave.")
            departed.add(statement.subject)
        elif statement.action == "remove":
            if statement.actor != owner or statement.subject not in members:
                raise MembershipError("not_owner", "Only the owner removes members.")
            if statement.subject == owner:
                raise MembershipError("bad_statement", "The owner leaves, not removes.")
            departed.add(statement.subject)
        else:
            raise MembershipError("bad_statement", f"Unknown action {statement.action!r}.")
    return frozenset((set(members) | added) - departed)
