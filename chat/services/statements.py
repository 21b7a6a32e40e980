"""Members mode: the server checks and stores member-signed membership statements
(cryptokit.membership). It cannot make one itself; clients verify them again before
they accept a key record, so these checks only keep garbage out of the database."""

from accounts.models import User
from chat.errors import ChatError
from chat.models import Conversation, MembershipChange
from cryptokit import signing
from cryptokit.errors import CryptoError
from cryptokit.membership import Statement
from keys.services import current_certificates, require_usable_certificate


def statement_json(change: MembershipChange) -> dict:
    return statement_of(change).to_json()


def statement_of(change: MembershipChange) -> Statement:
    return Statement(
        action=change.action,
        subject=change.subject.username,
        actor=change.actor.username,
        actor_serial=change.actor_serial,
        roster_epoch=change.roster_epoch,
        nonce=bytes(change.nonce),
        signature=bytes(change.signature),
        subject_signing_sha256=bytes(change.subject_signing_sha256),
        subject_encryption_sha256=bytes(change.subject_encryption_sha256),
    )


def require_statement(
    conversation: Conversation,
    statement: Statement | None,
    *,
    action: str,
    subject: User,
    actor: User,
) -> MembershipChange | None:
    """The checked, unsaved change for a members-mode conversation; None in server mode
    (where a statement is refused: the server decides membership there)."""
    if conversation.key_origin != Conversation.KeyOrigin.MEMBERS:
        if statement is not None:
            raise ChatError("invalid_frame", "Statements are for members-mode conversations.")
        return None
    if statement is None:
        raise ChatError(
            "statement_required", f"A members-mode {action} must be signed by its member."
        )
    if (statement.action, statement.subject, statement.actor) != (
        action,
        subject.username,
        actor.username,
    ):
        raise ChatError("bad_statement", "The statement is not about this request.")
    if statement.roster_epoch != conversation.roster_epoch:
        raise ChatError(
            "stale_roster",
            f"The member list changed: sign against roster {conversation.roster_epoch}.",
        )
    certificate = require_usable_certificate(statement.actor_serial, kind="signing", owner=actor)
    if action == MembershipChange.Action.ADD:
        _require_current_keys(subject, statement)
    try:
        data = statement.signed_bytes(str(conversation.id))
        signing.verify(bytes(certificate.spki_der), statement.signature, data)
    except (CryptoError, ValueError):
        raise ChatError("bad_statement", "The statement's signature does not verify.") from None
    return MembershipChange(
        conversation=conversation,
        action=action,
        subject=subject,
        actor=actor,
        actor_serial=statement.actor_serial,
        roster_epoch=statement.roster_epoch,
        nonce=statement.nonce,
        signature=statement.signature,
        subject_signing_sha256=statement.subject_signing_sha256,
        subject_encryption_sha256=statement.subject_encryption_sha256,
    )


def _require_current_keys(subject: User, statement: Statement) -> None:
    active = current_certificates(subject)
    if set(active) != {"signing", "encryption"}:
        raise ChatError("no_active_keys", f"{subject.username} has no keys to add.")
    if (
        bytes.fromhex(active["signing"].spki_sha256),
        bytes.fromhex(active["encryption"].spki_sha256),
    ) != (statement.subject_signing_sha256, statement.subject_encryption_sha256):
        raise ChatError("keys_changed", f"{subject.username}'s keys are not the ones you signed.")


def pending_changes(conversation: Conversation) -> list[MembershipChange]:
    """Changes in effect and waiting for the record that applies them, oldest first."""
    return list(
        MembershipChange.objects.filter(
            conversation=conversation, state=MembershipChange.State.PENDING
        )
        .select_related("subject", "actor")
        .order_by("pk")
    )
